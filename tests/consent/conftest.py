"""Fixtures: a practice with a flagged patient, a housing service, and the clinician's actions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FlagRulesConfig, HousingServiceConfig
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.lifecycle import raise_flags
from healthy_homes.flags.transitions import flags_for_patient
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord
from tests.flags.world import (
    NOW,
    PRACTICE,
    fresh_db,
    housing_service,
    on_register,
    practice_server,
    registers,
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = fresh_db(tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def practice(mock_fhir_factory) -> RunningMockServer:  # type: ignore[no-untyped-def]
    return practice_server(mock_fhir_factory)


@pytest.fixture
def housing(mock_fhir_factory) -> RunningMockServer:  # type: ignore[no-untyped-def]
    return mock_fhir_factory(mode="housing")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def desk(
    db: Database, practice: RunningMockServer, housing: RunningMockServer, clock: FixedClock
) -> AsyncIterator[ClinicianActions]:
    async with (
        FhirClient(practice.base_url, practice=PRACTICE) as practice_client,
        FhirClient(housing.base_url) as housing_client,
    ):
        yield ClinicianActions(
            db,
            practice_ods=PRACTICE,
            practice_client=practice_client,
            service=housing_service(housing.base_url),
            housing_client=housing_client,
            rules=FlagRulesConfig(),
            clock=clock,
        )


def desk_for(
    db: Database, practice_client: FhirClient, service: HousingServiceConfig, clock: FixedClock
) -> ClinicianActions:
    """The clinician's actions at PRACTICE, referring to ``service`` (no direct FHIR send)."""
    return ClinicianActions(
        db,
        practice_ods=PRACTICE,
        practice_client=practice_client,
        service=service,
        housing_client=None,
        rules=FlagRulesConfig(),
        clock=clock,
    )


async def flag_for(desk: ClinicianActions, patient_id: str = "p0") -> FlagRecord:
    """Put the patient on the COPD register and raise their flag."""
    on_register(desk.db, patient_id, "copd")
    await raise_flags(desk.db, desk.practice_client, PRACTICE, registers(), desk.rules, desk.clock)
    return flags_for_patient(desk.db, PRACTICE, patient_id)[0]


def everything(base_url: str, resource_type: str) -> list[dict]:
    """Every resource of a type on a mock server."""
    bundle = httpx.get(f"{base_url}/{resource_type}", params={"_count": "200"}).json()
    return [e["resource"] for e in bundle.get("entry", [])]
