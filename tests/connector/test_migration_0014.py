"""Migration 0014: single-column practice indexes that unique keys already served are gone."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from healthy_homes.store.db import Database, alembic_config, upgrade
from tests.store.conftest import migrated_db, migrated_sqlite, postgres_url  # noqa: F401
from tests.store.migration_checks import drift

DROPPED = {
    "register_membership": "ix_register_membership_practice_ods",
    "patient_status": "ix_patient_status_practice_ods",
    "sync_state": "ix_sync_state_practice_ods",
}


def _indexes(db: Database, table: str) -> set[str]:
    return {i["name"] for i in inspect(db.engine).get_indexes(table)}


def test_down_brings_the_indexes_back_and_up_drops_them(migrated_db: Database) -> None:  # noqa: F811
    for table, index in DROPPED.items():
        assert index not in _indexes(migrated_db, table)
    command.downgrade(alembic_config(migrated_db.engine), "0013")
    for table, index in DROPPED.items():
        assert index in _indexes(migrated_db, table)
    upgrade(migrated_db.engine)
    for table, index in DROPPED.items():
        assert index not in _indexes(migrated_db, table)


def test_the_models_agree(migrated_db: Database) -> None:  # noqa: F811
    assert drift(migrated_db, DROPPED.values()) == []
    assert drift(migrated_db, lambda change: "practice_ods" in repr(change)) == []


def test_sqlite_finds_a_practice_rows_by_the_unique_key(tmp_path: Path) -> None:
    db = migrated_sqlite(tmp_path / "hh.db")
    with db.engine.connect() as conn:
        for table in DROPPED:
            plan = " ".join(
                str(row[-1])
                for row in conn.execute(
                    text(f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE practice_ods = 'A1'")
                )
            )
            assert "USING INDEX sqlite_autoindex" in plan, (table, plan)
    db.dispose()
