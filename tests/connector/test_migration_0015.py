"""Migration 0015: patient_status keeps only patients who are not current."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from healthy_homes.store.db import Database, alembic_config, upgrade
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _rows(db: Database) -> set[tuple[str, bool]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT patient_id, current FROM patient_status")).all()
    return {(row[0], bool(row[1])) for row in rows}


def test_up_deletes_the_current_rows_and_keeps_the_others(migrated_db: Database) -> None:  # noqa: F811
    command.downgrade(alembic_config(migrated_db.engine), "0014")
    with migrated_db.engine.begin() as conn:
        for patient, current in (("p-alive", True), ("p-died", False), ("p-left", False)):
            conn.execute(
                text(
                    "INSERT INTO patient_status (practice_ods, patient_id, current, updated_at)"
                    " VALUES ('A12345', :p, :c, :at)"
                ),
                {"p": patient, "c": current, "at": AT},
            )
    upgrade(migrated_db.engine)
    assert _rows(migrated_db) == {("p-died", False), ("p-left", False)}
    command.downgrade(alembic_config(migrated_db.engine), "0014")
    assert _rows(migrated_db) == {("p-died", False), ("p-left", False)}
