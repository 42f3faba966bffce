"""The housing service's capacity, as an input to how many new flags are raised.

Referrals overwhelm stretched services (Housing+ in Sheffield waited ten weeks), so a
service that says it is full gets no new prompts raised for it. The figure comes from
the housing inbox's capacity endpoint (``GET {inbox}/teams/{team}/capacity``: the
team's new-referrals-per-week setting against this week's arrivals), named per service
by ``capacity_url`` in ``[[housing_services]]``: :func:`capacity_from_settings` builds
the connector's provider from configuration alone.

A practice whose patients may be routed to several services gets the room they have
together (free places added up; full only when every one is full). When an inbox
cannot be reached the last answer stands (or no limit, before any answer): a housing
outage must not silence every prompt.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig, PracticeConfig, Settings
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.tls import verify_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HousingCapacity:
    """What the housing service last said about taking new referrals."""

    accepting: bool = True
    free_places: int | None = None  # None: the service did not give a number
    as_of: datetime | None = None

    def allow(self, wanted: int) -> int:
        """How many of ``wanted`` new flags fit: none when full, at most the free places."""
        if not self.accepting:
            return 0
        if self.free_places is None:
            return wanted
        return max(0, min(wanted, self.free_places))


UNLIMITED = HousingCapacity()


@runtime_checkable
class CapacityProvider(Protocol):
    """Anything that can say, for a practice, how much room its housing service has."""

    async def capacity(self, practice: str) -> HousingCapacity:
        """The latest capacity of the housing service this practice refers to."""
        ...


class FixedCapacity:
    """A provider that always answers the same value (configuration, tests)."""

    def __init__(self, value: HousingCapacity) -> None:
        self.value = value

    async def capacity(self, practice: str) -> HousingCapacity:
        """The fixed value."""
        return self.value


async def resolve_capacity(
    source: HousingCapacity | CapacityProvider | None, practice: str
) -> HousingCapacity:
    """A capacity value from a value, a provider, or nothing (no limit)."""
    if source is None:
        return UNLIMITED
    if isinstance(source, HousingCapacity):
        return source
    return await source.capacity(practice)


def capacity_from_json(body: Mapping[str, object]) -> HousingCapacity:
    """The flags' value from the inbox capacity endpoint's answer."""
    free = body.get("freePlaces")
    as_of = body.get("asOf")
    return HousingCapacity(
        accepting=bool(body.get("accepting", True)),
        free_places=int(free) if isinstance(free, int) else None,
        as_of=datetime.fromisoformat(as_of) if isinstance(as_of, str) else None,
    )


def combine(values: Sequence[HousingCapacity]) -> HousingCapacity:
    """The room several services have together (a practice routing to each of them)."""
    if not values:
        return UNLIMITED
    open_ = [v for v in values if v.accepting]
    if not open_:
        return HousingCapacity(accepting=False, free_places=0)
    if any(v.free_places is None for v in open_):
        return HousingCapacity()
    return HousingCapacity(free_places=sum(v.free_places or 0 for v in open_))


class HttpCapacity:
    """One housing team's capacity, read over HTTP from its inbox's capacity endpoint."""

    def __init__(
        self,
        url: str,
        *,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | ssl.SSLContext = True,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self._auth = auth
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._client = client
        self._verify, self._timeout, self._transport = verify, timeout, transport
        self.last: HousingCapacity | None = None

    async def _get(self) -> httpx.Response:
        if self._client is not None:
            return await self._client.get(self.url, headers=self._headers, auth=self._auth)
        # Read once per sync run: a connection of its own is cheaper than a pool to keep.
        async with httpx.AsyncClient(
            verify=verify_for(self._verify), timeout=self._timeout, transport=self._transport
        ) as client:
            return await client.get(self.url, headers=self._headers, auth=self._auth)

    async def capacity(self, practice: str) -> HousingCapacity:
        """The team's capacity now; the last known value if the inbox does not answer."""
        try:
            response = await self._get()
            response.raise_for_status()
            self.last = capacity_from_json(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            # The URL names the team, not a patient; the error's text is left out.
            log.warning(
                "housing capacity not read from %s (%s); using the last known value",
                self.url,
                type(exc).__name__,
            )
        return self.last or UNLIMITED


class ConfiguredCapacity:
    """Each practice's throttle from the capacity of the services it refers to."""

    def __init__(
        self,
        readers: Mapping[str, HttpCapacity],
        practices: Mapping[str, Sequence[str]],
    ) -> None:
        self.readers = dict(readers)  # service id -> reader
        self.practices = {ods: list(ids) for ods, ids in practices.items()}

    async def capacity(self, practice: str) -> HousingCapacity:
        """The room the practice's services have together (no limit if none report)."""
        ids = [i for i in self.practices.get(practice, []) if i in self.readers]
        return combine([await self.readers[i].capacity(practice) for i in ids])


def services_of(settings: Settings, practice: PracticeConfig) -> list[HousingServiceConfig]:
    """The services a practice's referrals may be routed to (its named one, else all)."""
    return [s for s in settings.housing_services if practice.housing_service in (None, s.id)]


def capacity_from_settings(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ConfiguredCapacity | None:
    """The connector's capacity provider from ``[[housing_services]]`` (None: none set)."""
    readers = {
        s.id: HttpCapacity(
            str(s.capacity_url),
            auth=auth_from_config(s.auth, clock=clock),
            verify=tls_from_config(s.auth),
            transport=transport,
        )
        for s in settings.housing_services
        if s.capacity_url is not None
    }
    if not readers:
        return None
    practices = {p.ods_code: [s.id for s in services_of(settings, p)] for p in settings.practices}
    return ConfiguredCapacity(readers, practices)
