"""Per-practice clinician actions for the CDS service, with one pooled client per endpoint."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig, PracticeConfig, Settings
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.referrals.dataset import from_patient
from healthy_homes.referrals.routing import RouteOutcome, Routing, decide_dataset
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

    def services_for(self, ods: str) -> tuple[HousingServiceConfig, ...]:
        """The housing services a practice's patients may be routed to (as the pop-up's)."""
        try:
            practice = self.settings.practice(ods)
        except KeyError:
            return ()
        # A practice that names its service refers there only; otherwise routing
        # chooses among every configured service by postcode and tenure.
        return tuple(
            s for s in self.settings.housing_services if practice.housing_service in (None, s.id)
        )

    def route(self, ods: str, patient: JSON) -> Routing:
        """Where this patient's referral would go, decided as the pop-up decides it."""
        services = self.services_for(ods)
        try:
            # Built exactly as the referral's dataset is: the same postcode decides.
            dataset = from_patient(patient, practice_ods=ods, referrer="")
        except ValueError:
            return Routing(
                RouteOutcome.NO_POSTCODE,
                message="The patient's record has no NHS number, so no referral can be made.",
            )
        return decide_dataset(services, dataset)

    def _housing_for(self, service: HousingServiceConfig) -> FhirClient:
        housing = self._housing.get(service.id)
        if housing is None:
            url = str(service.fhir_base_url)
            housing = _housing_client(service, self.clock, self._transport_for(url))
            self._housing[service.id] = housing
        return housing

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
        services = self.services_for(ods)
        # FHIR services are sent to at once over pooled clients; the rest over their
        # own transport (ClinicianActions opens it for the send).
        clients = {
            s.id: self._housing_for(s)
            for s in services
            if s.transport == "fhir" and s.fhir_base_url is not None
        }
        url = str(practice.fhir_base_url)
        actions = ClinicianActions(
            self.db,
            practice_ods=ods,
            practice_client=_practice_client(practice, self.clock, self._transport_for(url)),
            service=service,
            housing_client=clients.get(service.id),
            rules=self.settings.flags,
            clock=self.clock,
            services=services,
            housing_clients=clients,
            share_health_reason=practice.share_health_reason,
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
