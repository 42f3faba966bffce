"""Migration 0010 creates the operations tables and its downgrade removes them."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from healthy_homes.store.db import Database, alembic_config, upgrade

TABLES = {"practice_lease", "practice_run"}


def test_0010_up_down_up(store_url: str) -> None:
    db = Database(store_url)  # migrated to head by the fixture
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    command.downgrade(alembic_config(db.engine), "0009")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    upgrade(db.engine, "0010")
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    db.dispose()
