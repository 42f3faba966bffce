"""Fixtures: the CDS Hooks app in process over a store with flagged patients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import Settings
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.cds_hooks.app import create_app
from healthy_homes.flags.cds_hooks.service import CdsHooksService
from healthy_homes.flags.lifecycle import raise_flags
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from tests.cds_hooks.ehr import BASE, ISSUER, jwks
from tests.flags.world import (
    HOUSING_ODS,
    NOW,
    PRACTICE,
    fresh_db,
    on_register,
    practice_server,
    registers,
)

REFERRAL_PAGE = "https://hh.example.nhs.uk/referral/{flag_id}"


def settings_for(practice_url: str, housing_url: str, **issuer: Any) -> Settings:
    """One practice, one housing service, one trusted EHR (keys inline unless given)."""
    trusted = {
        "iss": ISSUER,
        "practice_ods": PRACTICE,
        "fhir_servers": [practice_url],
        **issuer,
    }
    if "jwks_url" not in trusted:
        trusted.setdefault("jwks", jwks(("ES384", "ehr"), ("RS384", "ehr")))
    return Settings.model_validate(
        {
            "practices": [
                {"ods_code": PRACTICE, "name": "Test Surgery", "fhir_base_url": practice_url}
            ],
            "housing_services": [
                {
                    "id": "shh",
                    "name": "Safe and Healthy Homes",
                    "ods_code": HOUSING_ODS,
                    "fhir_base_url": housing_url,
                }
            ],
            "cds_hooks": {
                "public_base_url": BASE,
                "referral_page_url": REFERRAL_PAGE,
                "source_url": "https://hh.example.nhs.uk/about",
                "issuers": [trusted],
            },
        }
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


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
async def flagged(db: Database, practice: RunningMockServer, clock: FixedClock) -> Database:
    """p0 on COPD (priority 1), p1 on COPD and high risk (priority 3), both flagged."""
    on_register(db, "p0", "copd")
    on_register(db, "p1", "copd")
    on_register(db, "p1", "high_risk")
    settings = Settings()
    async with FhirClient(practice.base_url) as client:
        await raise_flags(db, client, PRACTICE, registers(), settings.flags, clock)
    return db


@pytest.fixture
async def cds(
    flagged: Database,
    practice: RunningMockServer,
    housing: RunningMockServer,
    clock: FixedClock,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    service = CdsHooksService(settings_for(practice.base_url, housing.base_url), flagged, clock)
    app = create_app(service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client
    await service.aclose()


async def settled(cds: httpx.AsyncClient) -> None:
    """Wait until the cards answered so far are recorded as shown (that happens after)."""
    await cds.app.state.cds.shown.wait()  # type: ignore[attr-defined]
