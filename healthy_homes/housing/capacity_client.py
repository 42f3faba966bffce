"""The flags' :class:`~healthy_homes.flags.capacity.CapacityProvider`, read from an inbox.

``GET {inbox}/teams/{team}/capacity`` with the team's bearer token says how many new
referrals a week the team takes and how many arrived this week; the free places left
become the flags' throttle. When the inbox cannot be reached the last answer stands
(or no limit, before any answer): a housing outage must not silence every prompt.
"""

from __future__ import annotations

import logging
from datetime import datetime

import httpx

from healthy_homes.flags.capacity import UNLIMITED, HousingCapacity

log = logging.getLogger(__name__)


def capacity_from_json(body: dict[str, object]) -> HousingCapacity:
    """The flags' value from the endpoint's answer."""
    free = body.get("freePlaces")
    as_of = body.get("asOf")
    return HousingCapacity(
        accepting=bool(body.get("accepting", True)),
        free_places=int(free) if isinstance(free, int) else None,
        as_of=datetime.fromisoformat(as_of) if isinstance(as_of, str) else None,
    )


class InboxCapacity:
    """Capacity of one housing team, read over HTTP from its inbox."""

    def __init__(
        self,
        inbox_url: str,
        team: str,
        token: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = f"{inbox_url.rstrip('/')}/teams/{team}/capacity"
        self.team = team
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = client
        self._timeout = timeout
        self.last: HousingCapacity | None = None

    async def capacity(self, practice: str) -> HousingCapacity:
        """The team's capacity now; the last known value if the inbox does not answer."""
        try:
            if self._client is not None:
                response = await self._client.get(self.url, headers=self._headers)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(self.url, headers=self._headers)
            response.raise_for_status()
            self.last = capacity_from_json(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "housing capacity of team %s not read (%s); using the last known value",
                self.team,
                type(exc).__name__,
            )
        return self.last or UNLIMITED
