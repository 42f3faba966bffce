"""Migration 0010 creates the operations tables and its downgrade removes them."""

from __future__ import annotations

from healthy_homes.store.db import Database
from tests.store.migration_checks import round_trip

TABLES = {"practice_lease", "practice_run"}


def test_0010_up_down_up(store_url: str) -> None:
    db = Database(store_url)  # migrated to head by the fixture
    round_trip(db, "0009", tables=TABLES)
    db.dispose()
