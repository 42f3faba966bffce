"""Shared helpers for connector tests: servers seeded in the past, settings, state snapshots."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import PracticeConfig, Settings, StorageConfig, SyncConfig
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.fhir.systems import CONDITION_CLINICAL, CONDITION_VERIFICATION, SNOMED
from healthy_homes.mock_server.server import RunningMockServer, build_server
from healthy_homes.store.db import Database
from healthy_homes.store.models import PatientStatus, RegisterCondition, RegisterMembership

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TODAY: date = NOW.date()
#: The practice's records were written a month before the connector first looks.
SEEDED = NOW - timedelta(days=30)
#: Retries without waiting, and a breaker that a 20% fault rate cannot trip.
FAULT_POLICY = RetryPolicy(max_attempts=12, breaker_threshold=50)


async def no_sleep(_: float) -> None:
    """An injected sleep that returns at once."""


def practice_server(patients: int = 300, seed: int = 7, ods: str = "A12345") -> RunningMockServer:
    """A started mock practice whose data was written at SEEDED; its clock then reads NOW."""
    clock = FixedClock(SEEDED)
    server = build_server(patients=patients, seed=seed, clock=clock, today=TODAY, ods_code=ods)
    clock.set(NOW)
    return server.start()


def practice(server: RunningMockServer | str, ods: str = "A12345", **extra: Any) -> PracticeConfig:
    """A practice entry pointing at a mock server (or any base URL)."""
    url = server if isinstance(server, str) else server.base_url
    return PracticeConfig.model_validate(
        {"ods_code": ods, "name": f"Surgery {ods}", "fhir_base_url": url, **extra}
    )


def settings(db: Database, *practices: PracticeConfig, **sync: Any) -> Settings:
    """Settings over ``db`` for the given practices."""
    return Settings(
        storage=StorageConfig(url=db.url),
        practices=list(practices),
        sync=SyncConfig.model_validate(sync),
    )


def memberships(db: Database, ods: str = "A12345") -> set[tuple[str, str, str | None]]:
    """Active memberships as (register, patient, since)."""
    with db.session() as session:
        rows = session.exec(
            select(RegisterMembership).where(
                RegisterMembership.practice_ods == ods,
                RegisterMembership.active == True,  # noqa: E712
            )
        )
        return {
            (m.register_name, m.patient_id, m.since.isoformat() if m.since else None) for m in rows
        }


def register_state(db: Database, ods: str = "A12345") -> dict[str, Any]:
    """Everything the sync stores about a practice, for before/after comparisons."""
    with db.session() as session:
        members = {
            (m.register_name, m.patient_id, m.active, m.since, tuple(m.condition_ids))
            for m in session.exec(
                select(RegisterMembership).where(RegisterMembership.practice_ods == ods)
            )
        }
        conditions = {
            (c.register_name, c.condition_id, c.patient_id, c.role, c.noted)
            for c in session.exec(
                select(RegisterCondition).where(RegisterCondition.practice_ods == ods)
            )
        }
        statuses = {
            (s.patient_id, s.current)
            for s in session.exec(select(PatientStatus).where(PatientStatus.practice_ods == ods))
        }
    return {"members": members, "conditions": conditions, "statuses": statuses}


def condition(patient: str, code: str, *, status: str = "active", **extra: Any) -> dict[str, Any]:
    """A Condition as a practice system would write it."""
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "onsetDateTime": "2020-05-01",
        **extra,
    }


def rest(server: RunningMockServer) -> httpx.Client:
    """A plain HTTP client on the server's FHIR base, for writes 'by the practice'."""
    return httpx.Client(base_url=server.base_url + "/", timeout=10)


def live_patient(
    server: RunningMockServer, *, not_in: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """An alive, registered adult patient not on any register listed in ``not_in``."""
    with rest(server) as http:
        bundle = http.get("Patient", params={"_count": "200"}).raise_for_status().json()
    for entry in bundle["entry"]:
        patient = entry["resource"]
        if patient.get("deceasedDateTime") or patient.get("active") is False:
            continue
        if patient["id"] in not_in or patient["birthDate"] > "2000-01-01":
            continue
        return dict(patient)
    raise AssertionError("no suitable patient in the first page")
