"""The demo scenario, usable from the CLI and from end-to-end tests.

It starts two mock FHIR servers on loopback ports (a practice seeded with a synthetic
population, and a housing service), then drives the real connector over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from sqlmodel import select

from healthy_homes.clock import Clock, SystemClock
from healthy_homes.config.models import (
    FlagRulesConfig,
    HousingServiceConfig,
    PracticeConfig,
    Settings,
    StorageConfig,
)
from healthy_homes.connector.run import RunReport, run_once
from healthy_homes.consent.service import Recipient, record_decision
from healthy_homes.crypto import KeyRing, get_keyring, load_key_file, write_key_file
from healthy_homes.errors import KeyMissingError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.resources import reference_id
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.generator import seed_store
from healthy_homes.mock_server.store import MockStore
from healthy_homes.referrals.forward import forward_referral, refresh_status
from healthy_homes.referrals.service import create_referral
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, FlagRecord, FlagStatus

PRACTICE_ODS = "A12345"
HOUSING_ODS = "HH001"
CLINICIAN = "Dr A Demo (GP)"
DECLINE_REASON = "Patient prefers not to have a home visit"


@dataclass
class DemoResult:
    """What happened, for the summary and for tests."""

    run: RunReport
    flagged: list[str]
    consented_patient: str | None = None
    declined_patient: str | None = None
    referral_id: str | None = None
    referral_status: str | None = None
    housing_received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def demo_keyring(workdir: Path) -> KeyRing:
    """The installed or configured keys; else the demo's own key file, kept in its workdir."""
    try:
        return get_keyring()
    except KeyMissingError:
        path = workdir / "healthy-homes-demo-keys.json"
        if not path.exists():
            write_key_file(path, KeyRing.generate())
        return load_key_file(path)


class Demo:
    """Servers plus connector state for one demo run."""

    def __init__(
        self,
        workdir: Path,
        *,
        patients: int = 300,
        seed: int = 7,
        clock: Clock | None = None,
        db_url: str | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.today: date = self.clock.now().date()
        self.workdir = workdir
        self.practice_store = MockStore()
        seed_store(self.practice_store, patients, seed, self.today)
        self.practice_server = ServerThread(create_app(self.practice_store))
        self.housing_server = ServerThread(create_app(mode="housing"))
        # db_url: the IG plaintext scan runs the same flow on PostgreSQL too.
        url = db_url or f"sqlite:///{workdir / 'healthy-homes-demo.db'}"
        self.db = Database(url, keyring=demo_keyring(workdir))
        self.settings: Settings | None = None

    def __enter__(self) -> Demo:
        practice_url = self.practice_server.start() + "/fhir"
        housing_url = self.housing_server.start() + "/fhir"
        self.settings = Settings(
            storage=StorageConfig(url=self.db.url),
            flags=FlagRulesConfig(max_new_flags_per_day=1000),
            practices=[
                PracticeConfig.model_validate(
                    {
                        "ods_code": PRACTICE_ODS,
                        "name": "Demo Surgery",
                        "fhir_base_url": practice_url,
                        "housing_service": "demo-housing",
                    }
                )
            ],
            housing_services=[
                HousingServiceConfig.model_validate(
                    {
                        "id": "demo-housing",
                        "name": "Demo Safe and Healthy Homes team",
                        "ods_code": HOUSING_ODS,
                        "fhir_base_url": housing_url,
                    }
                )
            ],
        )
        self.db.upgrade()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.practice_server.stop()
        self.housing_server.stop()
        self.db.dispose()

    @property
    def practice_url(self) -> str:
        """The practice FHIR base URL."""
        return self.practice_server.url + "/fhir"

    @property
    def housing_url(self) -> str:
        """The housing FHIR base URL."""
        return self.housing_server.url + "/fhir"

    async def run(self) -> DemoResult:
        """Sync, flag, consent one patient, decline another, forward, read back."""
        assert self.settings is not None, "use Demo as a context manager"
        settings, clock = self.settings, self.clock
        run = await run_once(settings, self.db, clock)
        with self.db.session() as session:
            flags = list(
                session.exec(select(FlagRecord).where(FlagRecord.status == FlagStatus.RAISED))
            )
        result = DemoResult(run=run, flagged=sorted(f.patient_id for f in flags))
        service = settings.housing_services[0]
        recipient = Recipient(service.name, service.ods_code)
        async with (
            FhirClient(self.practice_url, practice=PRACTICE_ODS) as practice,
            FhirClient(self.housing_url) as housing,
        ):
            chosen = await self._pick_patients(practice, flags)
            if len(chosen) >= 1:
                consent = await record_decision(
                    self.db,
                    practice,
                    flag_id=chosen[0].id,
                    decision=ConsentDecision.GIVEN,
                    recorded_by=CLINICIAN,
                    recipient=recipient,
                    clock=clock,
                )
                referral = await create_referral(
                    self.db,
                    practice,
                    consent_id=consent.id,
                    housing_service_id=service.id,
                    clock=clock,
                )
                await forward_referral(self.db, housing, referral.id, service, clock)
                result.consented_patient = chosen[0].patient_id
                result.referral_id = referral.id
                result.referral_status = await refresh_status(self.db, housing, referral.id, clock)
            if len(chosen) >= 2:
                await record_decision(
                    self.db,
                    practice,
                    flag_id=chosen[1].id,
                    decision=ConsentDecision.DECLINED,
                    recorded_by=CLINICIAN,
                    recipient=recipient,
                    clock=clock,
                    reason=DECLINE_REASON,
                )
                result.declined_patient = chosen[1].patient_id
        result.housing_received = await self.housing_contents()
        return result

    async def _pick_patients(
        self, practice: FhirClient, flags: list[FlagRecord]
    ) -> list[FlagRecord]:
        """Flagged patients seen today first: the clinician acts during the appointment."""
        today = self.today.isoformat()
        seen_today: set[str] = set()
        async for appointment in practice.search("Appointment", {"date": today, "_count": "100"}):
            for participant in appointment.get("participant") or []:
                patient = reference_id(participant.get("actor"), "Patient")
                if patient:
                    seen_today.add(patient)
        ordered = sorted(flags, key=lambda f: (f.patient_id not in seen_today, f.patient_id))
        return ordered[:2]

    async def housing_contents(self) -> dict[str, list[dict[str, Any]]]:
        """Everything the housing endpoint holds, by resource type."""
        contents: dict[str, list[dict[str, Any]]] = {}
        async with httpx.AsyncClient(base_url=self.housing_url + "/") as http:
            for resource_type in ("Patient", "Consent", "ServiceRequest", "Task"):
                response = await http.get(resource_type, params={"_count": "100"})
                response.raise_for_status()
                entries = response.json().get("entry") or []
                contents[resource_type] = [e["resource"] for e in entries]
        return contents
