"""Fixtures: a fresh store and a practice server holding a few synthetic patients."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from tests.flags.world import fresh_db, patient


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = fresh_db(tmp_path)
    yield database  # type: ignore[misc]
    database.dispose()


@pytest.fixture
def practice(mock_fhir_factory) -> RunningMockServer:  # type: ignore[no-untyped-def]
    """A practice server with patients p0..p4 (p4 has died)."""
    server: RunningMockServer = mock_fhir_factory(patients=0)
    people = [patient(f"p{i}", i) for i in range(4)]
    people.append(patient("p4", 4, deceasedDateTime="2026-10-01"))
    server.store.load(people)
    return server
