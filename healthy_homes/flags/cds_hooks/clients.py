"""Per-practice clinician actions for the CDS service, with one pooled client per endpoint."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig, PracticeConfig, Settings
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.client import FhirClient
from healthy_homes.store.db import Database

TransportFor = Callable[[str], httpx.AsyncBaseTransport | None]


def _practice_client(
    practice: PracticeConfig, clock: Clock, transport: httpx.AsyncBaseTransport | None
) -> FhirClient:
    return FhirClient(
        str(practice.fhir_base_url),
        practice=practice.ods_code,
        auth=auth_from_config(practice.auth, clock=clock, practice=practice.ods_code),
        verify=tls_from_config(practice.auth),
        transport=transport,
        clock=clock,
    )


def _housing_client(
    service: HousingServiceConfig, clock: Clock, transport: httpx.AsyncBaseTransport | None
) -> FhirClient:
    return FhirClient(
        str(service.fhir_base_url),
        auth=auth_from_config(service.auth, clock=clock),
        verify=tls_from_config(service.auth),
        transport=transport,
        clock=clock,
    )


class PracticeActions:
    """Builds, once per practice, the :class:`ClinicianActions` feedback is turned into."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        *,
        transport_for: TransportFor | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._transport_for = transport_for or (lambda _url: None)
        self._actions: dict[str, ClinicianActions] = {}
        self._housing: dict[str, FhirClient] = {}

    def housing_name(self, ods: str) -> str:
        """The name of the housing service a practice refers to (for the consent wording)."""
        try:
            service = self.settings.housing_service_for(self.settings.practice(ods))
        except KeyError:
            service = None
        return service.name if service else "the local housing team"

    def for_practice(self, ods: str) -> ClinicianActions | None:
        """The practice's actions; None if it is not configured or has no housing service."""
        if ods in self._actions:
            return self._actions[ods]
        try:
            practice = self.settings.practice(ods)
        except KeyError:
            return None
        service = self.settings.housing_service_for(practice)
        if service is None:
            return None
        housing = self._housing.get(service.id)
        if housing is None:
            url = str(service.fhir_base_url)
            housing = _housing_client(service, self.clock, self._transport_for(url))
            self._housing[service.id] = housing
        url = str(practice.fhir_base_url)
        actions = ClinicianActions(
            self.db,
            practice_ods=ods,
            practice_client=_practice_client(practice, self.clock, self._transport_for(url)),
            service=service,
            housing_client=housing,
            rules=self.settings.flags,
            clock=self.clock,
        )
        self._actions[ods] = actions
        return actions

    async def aclose(self) -> None:
        """Close every client opened."""
        for actions in self._actions.values():
            await actions.practice_client.aclose()
        for client in self._housing.values():
            await client.aclose()
        self._actions.clear()
        self._housing.clear()
