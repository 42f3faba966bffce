"""The retention purge on SQLite and PostgreSQL: what goes, what stays, dry runs, space."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text
from sqlmodel import col

from healthy_homes.audit import verify_log
from healthy_homes.audit.chain import record_audit
from healthy_homes.clock import FixedClock
from healthy_homes.config.retention import RetentionConfig
from healthy_homes.retention.purge import purge
from healthy_homes.store.audit_models import AuditEntry
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagStatus, HousingReferral, Referral, RegisterMembership
from tests.retention.seed import ODS, bulk_never_referred, housing_referral, patient, referred

T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=500)
POLICY = RetentionConfig(never_referred_days=400, referral_days=730, housing_referral_days=365)


def snapshot(db: Database) -> dict[str, int]:
    """Row count of every table."""
    with db.engine.connect() as conn:
        return {
            name: conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one()
            for name in inspect(conn).get_table_names()
        }


def seed(db: Database) -> dict[str, str]:
    ids: dict[str, str] = {}
    with db.session() as session:
        patient(session, "p-old", T0)
        patient(session, "p-new", T0 + timedelta(days=300))
        patient(session, "p-open", T0, flag=FlagStatus.SHOWN)
        ids["kept-referral"] = referred(session, "p-ref", T0).id
        ids["old-referral"] = referred(session, "p-ref-old", T0 - timedelta(days=300)).id
        ids["old-housing"] = housing_referral(session, T0, ended=True).id
        ids["recent-housing"] = housing_referral(session, NOW - timedelta(days=30), ended=True).id
        ids["open-housing"] = housing_referral(session, T0, ended=False).id
        record_audit(
            session,
            actor="u-clin-1",
            role="clinician",
            action="consent.declined",
            subject_kind="consent",
            subject_id="c-1",
            practice_ods=ODS,
            patient_id="p-old",
            clock=FixedClock(T0),
        )
    return ids


def patients_left(db: Database) -> set[str]:
    with db.session() as session:
        rows = session.execute(select(col(RegisterMembership.patient_id))).scalars()
        return set(rows)


def test_dry_run_counts_exactly_what_a_real_run_removes_and_changes_nothing(
    db: Database,
) -> None:
    seed(db)
    before = snapshot(db)
    dry = purge(db, POLICY, FixedClock(NOW), dry_run=True)
    assert snapshot(db) == before
    assert dry.total > 0 and dry.bytes_before is None
    real = purge(db, POLICY, FixedClock(NOW))
    assert dict(real.counts) == dict(dry.counts)
    after = snapshot(db)
    for table, n in real.counts.items():
        assert before[table] - after[table] == n, table


def test_purge_removes_what_the_policy_says_and_keeps_the_rest(db: Database) -> None:
    ids = seed(db)
    report = purge(db, POLICY, FixedClock(NOW))
    # Old never-referred patient and the old referral (then its patient) are gone.
    assert patients_left(db) == {"p-new", "p-open", "p-ref"}
    with db.session() as session:
        referrals = set(session.execute(select(col(Referral.id))).scalars())
        housing = set(session.execute(select(col(HousingReferral.id))).scalars())
        actions = list(
            session.execute(select(col(AuditEntry.action)).order_by(col(AuditEntry.seq))).scalars()
        )
        assert verify_log(session).ok
    assert referrals == {ids["kept-referral"]}
    assert housing == {ids["recent-housing"], ids["open-housing"]}
    # Per patient: membership, condition, status, appointment, flag, event, consent(s).
    assert report.counts["register_membership"] == 2
    assert report.counts["register_condition"] == 2
    assert report.counts["patient_status"] == 2
    assert report.counts["appointment_watch"] == 2
    assert report.counts["flag"] == 2
    assert report.counts["flag_event"] == 2
    assert report.counts["consent"] == 2  # p-old's decline, p-ref-old's permit
    assert report.counts["referral"] == 1 and report.counts["outbox"] == 1
    assert report.counts["housing_referral"] == 1 and report.counts["housing_activity"] == 1
    # The audit log is kept, and the purge itself is in it.
    assert actions == ["consent.declined", "retention.purge"]
    # A second run finds nothing more.
    assert purge(db, POLICY, FixedClock(NOW)).total == 0


def test_purging_reclaims_space(db: Database) -> None:
    with db.session() as session:
        patient(session, "p-new", NOW)
        bulk_never_referred(session, 1500, T0)
    measure = _sqlite_file_bytes if db.engine.dialect.name == "sqlite" else _pg_table_bytes
    before = measure(db)
    report = purge(db, POLICY, FixedClock(NOW))
    assert report.counts["register_membership"] == 1500
    assert report.bytes_before is not None and report.bytes_after is not None
    assert measure(db) < before / 2
    assert report.bytes_after < report.bytes_before
    assert patients_left(db) == {"p-new"}


def _sqlite_file_bytes(db: Database) -> int:
    with db.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return os.path.getsize(db.engine.url.database or "")


def _pg_table_bytes(db: Database) -> int:
    with db.engine.connect() as conn:
        query = "SELECT pg_relation_size('register_membership') + pg_relation_size('flag_event')"
        return int(conn.execute(text(query)).scalar_one())


@pytest.mark.parametrize("days", [399, 401])
def test_the_never_referred_period_is_counted_from_the_last_change(db: Database, days: int) -> None:
    with db.session() as session:
        patient(session, "p", NOW - timedelta(days=days))
    purge(db, POLICY, FixedClock(NOW))
    with db.session() as session:
        left = session.execute(select(func.count()).select_from(RegisterMembership)).scalar_one()
    assert left == (1 if days < 400 else 0)
