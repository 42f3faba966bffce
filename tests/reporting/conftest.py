"""Fixtures: a migrated database on SQLite or on a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.store.db import Database
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)
from tests.store.templates import migrated_sqlite


@pytest.fixture
def backend(migrated_db: Database) -> Database:  # noqa: F811  (the imported fixture)
    """The connector's database, migrated to head, on each backend in turn."""
    return migrated_db


@pytest.fixture
def housing_db(tmp_path: Path) -> Iterator[Database]:
    """The housing inbox's own database (SQLite: it is another organisation's system)."""
    db = migrated_sqlite(tmp_path / "housing.db")
    yield db
    db.dispose()
