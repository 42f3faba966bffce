"""Audit tests: a migrated database, SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from healthy_homes.store.db import Database
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)


@pytest.fixture
def db(migrated_db: Database) -> Database:  # noqa: F811  (the imported fixture)
    """A migrated database on each backend."""
    return migrated_db
