"""Patient statuses in the store: a row only for a patient who is not current."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from healthy_homes.registers.conditions import statuses, write_statuses
from healthy_homes.store.db import Database
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ODS = "A12345"


def _rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM patient_status")).scalar_one())


def test_only_patients_who_are_not_current_get_a_row(migrated_db: Database) -> None:  # noqa: F811
    seen = {f"p{i:04d}": i % 50 != 0 for i in range(1000)}  # 20 died or left
    with migrated_db.session() as session:
        changed = write_statuses(session, ODS, seen, NOW)
    assert changed == {p for p, current in seen.items() if not current}
    assert _rows(migrated_db) == 20
    with migrated_db.session() as session:
        # Asked about many (all rows read) or few (looked up by id): the same answers.
        assert statuses(session, ODS, seen) == {p: False for p in changed}
        few = ["p0000", "p0001", "p0050", "p9999"]
        assert statuses(session, ODS, few) == {"p0000": False, "p0050": False}
        assert statuses(session, "B99999", seen) == {}


def test_a_patient_current_again_loses_their_row(migrated_db: Database) -> None:  # noqa: F811
    with migrated_db.session() as session:
        write_statuses(session, ODS, {"p1": False, "p2": False}, NOW)
    with migrated_db.session() as session:
        changed = write_statuses(session, ODS, {"p1": True, "p2": False, "p3": True}, NOW)
    assert changed == {"p1"}  # p2 unchanged, p3 current as assumed
    with migrated_db.session() as session:
        assert statuses(session, ODS, None) == {"p2": False}
    assert _rows(migrated_db) == 1
