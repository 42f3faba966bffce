"""Migration 0008 goes down and up again cleanly, triggers and head row included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from healthy_homes.audit import verify_log
from healthy_homes.clock import FixedClock
from healthy_homes.store.db import Database
from tests.audit.test_chain import append
from tests.store.migration_checks import round_trip


def test_downgrade_removes_the_audit_tables_and_upgrade_restores_them(db: Database) -> None:
    append(db, FixedClock(datetime(2026, 11, 24, tzinfo=UTC)), 2)
    round_trip(db, "0007", tables={"audit_log", "audit_head"})
    with db.session() as session:
        result = verify_log(session)
    assert result.ok and result.entries == 0
    append(db, FixedClock(datetime(2026, 11, 24, tzinfo=UTC)), 1)
    with pytest.raises(DBAPIError), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
