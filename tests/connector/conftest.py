"""Fixtures for connector tests: a migrated SQLite store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated SQLite database."""
    database = Database(f"sqlite:///{tmp_path / 'connector.db'}")
    database.upgrade()
    yield database
    database.dispose()
