"""Batched appends: one head lock for many entries, the same chain as one-by-one appends."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from healthy_homes.audit import AuditEvent, record_audit, record_audit_many, verify_log
from healthy_homes.audit.chain import head_mac
from healthy_homes.clock import FixedClock
from healthy_homes.store.audit_models import AuditEntry, AuditHead
from healthy_homes.store.db import Database

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def event(i: int) -> AuditEvent:
    return AuditEvent(
        actor="system",
        role="system",
        action="referral.disclosed",
        subject_kind="referral",
        subject_id=f"ref-{i}",
        practice_ods="A12345",
        patient_id=f"pat-{i}" if i % 2 else None,
        detail={"service": "housing", "via": "outbox"},
    )


def entries(db: Database) -> list[tuple[object, ...]]:
    with db.session() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [(r.seq, r.at, r.subject_id, r.patient, r.detail, r.prev_mac, r.mac) for r in rows]


def test_a_batch_writes_the_same_chain_as_one_by_one_appends(db: Database, tmp_path: Path) -> None:
    clock = FixedClock(START)
    with db.session() as session:
        record_audit_many(session, [event(0)], clock)
    clock.advance(timedelta(seconds=1))
    with db.session() as session:
        record_audit_many(session, [event(i) for i in range(1, 6)], clock)
    batched = entries(db)
    assert [row[0] for row in batched] == [1, 2, 3, 4, 5, 6]
    assert [row[2] for row in batched] == [f"ref-{i}" for i in range(6)]
    with db.session() as session:
        assert verify_log(session).ok
        head = session.get(AuditHead, 1)
        assert head is not None and head.seq == 6 and head.mac == batched[-1][6]
        assert head.head_mac == head_mac(6, batched[-1][6])

    # The same events appended one at a time, on a fresh log, give byte-identical entries.
    other = Database(f"sqlite:///{tmp_path}/one-by-one.db")
    other.upgrade()
    try:
        clock = FixedClock(START)
        for i in range(6):
            e = event(i)
            with other.session() as session:
                record_audit(
                    session,
                    actor=e.actor,
                    role=e.role,
                    action=e.action,
                    subject_kind=e.subject_kind,
                    subject_id=e.subject_id,
                    practice_ods=e.practice_ods,
                    patient_id=e.patient_id,
                    detail=e.detail,
                    clock=clock,
                )
            if i == 0:
                clock.advance(timedelta(seconds=1))
        assert entries(other) == batched
    finally:
        other.dispose()


def test_an_empty_batch_touches_nothing(db: Database) -> None:
    with db.session() as session:
        assert record_audit_many(session, [], FixedClock(START)) == []
        head = session.get(AuditHead, 1)
        assert head is not None and head.seq == 0


def test_a_rolled_back_batch_leaves_no_entries_and_no_gap(db: Database) -> None:
    clock = FixedClock(START)
    # The action fails after writing its audit entries: the session rolls them back.
    with contextlib.suppress(RuntimeError), db.session() as session:
        record_audit_many(session, [event(i) for i in range(3)], clock)
        raise RuntimeError("the action failed after its audit entries")
    with db.session() as session:
        record_audit_many(session, [event(9)], clock)
    assert [(row[0], row[2]) for row in entries(db)] == [(1, "ref-9")]


def test_concurrent_batches_interleave_without_gaps_or_forks(db: Database) -> None:
    clock = FixedClock(START)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for b in range(5):
                with db.session() as session:
                    batch = [event(100 * w + 10 * b + i) for i in range(4)]
                    record_audit_many(session, batch, clock)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = entries(db)
    assert [row[0] for row in rows] == list(range(1, 61))
    # Each batch's entries stay together, in the order given.
    for start in range(0, 60, 4):
        ids = [int(str(row[2]).removeprefix("ref-")) for row in rows[start : start + 4]]
        assert ids == list(range(ids[0], ids[0] + 4))
    with db.session() as session:
        result = verify_log(session)
    assert result.ok and result.entries == 60
