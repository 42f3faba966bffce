"""Migration 0002 builds the sync tables exactly as the models say, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from healthy_homes.store.db import Database
from healthy_homes.store.models import SyncState
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)
from tests.store.migration_checks import drift, round_trip, table_names

OURS = {"sync_state", "register_condition", "patient_status", "appointment_watch"}


def test_tables_match_the_models_keep_exact_watermarks_and_go_down_and_up(
    migrated_db: Database,  # noqa: F811  (the imported fixture)
) -> None:
    db = migrated_db
    assert table_names(db) >= OURS
    assert drift(db, OURS) == []
    when = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
    with db.session() as session:
        session.add(
            SyncState(
                practice_ods="A12345",
                stream="copd",
                source="condition",
                watermark=when,
                updated_at=when,
            )
        )
    with db.session() as session:
        [row] = session.exec(select(SyncState)).all()
        assert row.watermark == when  # microseconds survive: watermarks are exact
    round_trip(db, "0001", tables=OURS)
