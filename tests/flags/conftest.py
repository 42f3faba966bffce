"""Fixtures: a fresh store and a practice server holding a few synthetic patients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from tests.flags.world import fresh_db, practice_server


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = fresh_db(tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def practice(mock_fhir_factory) -> RunningMockServer:  # type: ignore[no-untyped-def]
    """A practice server with patients p0..p4 (p4 has died)."""
    return practice_server(mock_fhir_factory)
