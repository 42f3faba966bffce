"""Fixtures: a migrated database on SQLite or on a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.store.db import Database
from tests.store.conftest import postgres_url  # noqa: F401  (the same throwaway database)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The connector's database, migrated to head, on each backend in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hh.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def housing_db(tmp_path: Path) -> Iterator[Database]:
    """The housing inbox's own database (SQLite: it is another organisation's system)."""
    db = Database(f"sqlite:///{tmp_path / 'housing.db'}")
    db.upgrade()
    yield db
    db.dispose()
