"""The audit chain: appends, tampering, removal, truncation, triggers, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from healthy_homes.audit import record_audit, verify_log
from healthy_homes.audit.chain import pseudonym
from healthy_homes.clock import FixedClock
from healthy_homes.store.audit_models import AuditEntry
from healthy_homes.store.db import Database

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def append(db: Database, clock: FixedClock, n: int, *, prefix: str = "r") -> None:
    for i in range(n):
        with db.session() as session:
            record_audit(
                session,
                actor="u-clin-1",
                role="clinician",
                action="consent.given",
                subject_kind="consent",
                subject_id=f"{prefix}{i}",
                practice_ods="A12345",
                patient_id=f"pat-{i}",
                detail={"method": "verbal", "n": i},
                clock=clock,
            )
        clock.advance(timedelta(seconds=1))


def drop_triggers(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            for name in ("audit_log_no_update", "audit_log_no_delete", "audit_head_forward"):
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))


def check(db: Database) -> tuple[bool, int | None, str | None, int]:
    with db.session() as session:
        result = verify_log(session)
    return result.ok, result.first_bad, result.problem, result.entries


def test_entries_chain_and_carry_a_pseudonym_not_the_patient(db: Database) -> None:
    clock = FixedClock(START)
    assert check(db) == (True, None, None, 0)
    append(db, clock, 3)
    assert check(db) == (True, None, None, 3)
    with db.session() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_mac == "0" * 64 and rows[1].prev_mac == rows[0].mac
    assert rows[0].at == START and rows[2].at == START + timedelta(seconds=2)
    assert rows[0].patient == pseudonym("A12345", "pat-0") and "pat-0" not in rows[0].patient
    assert rows[0].detail == {"method": "verbal", "n": 0}


def failing_action(db: Database, clock: FixedClock) -> None:
    """An action that records its audit entry and then fails."""
    with db.session() as session:
        record_audit(
            session,
            actor="u1",
            role="clinician",
            action="consent.given",
            subject_kind="consent",
            subject_id="c-rolled-back",
            practice_ods="A12345",
            clock=clock,
        )
        raise RuntimeError("the action failed")


def test_an_entry_rolls_back_with_the_action(db: Database) -> None:
    clock = FixedClock(START)
    append(db, clock, 1)
    with pytest.raises(RuntimeError):
        failing_action(db, clock)
    append(db, clock, 1, prefix="after")
    assert check(db) == (True, None, None, 2)


def test_triggers_refuse_update_and_delete(db: Database) -> None:
    append(db, FixedClock(START), 2)
    for statement in (
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = 1",
    ):
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text(statement))
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
    assert check(db) == (True, None, None, 2)


def tamper(db: Database, *statements: str) -> tuple[bool, int | None, str]:
    """Run statements past the triggers (as a database owner could); verify afterwards."""
    drop_triggers(db)
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    ok, first_bad, problem, _ = check(db)
    return ok, first_bad, problem or ""


TAMPERING = [
    # (what is done, first bad entry, what the verifier says)
    pytest.param(
        ["UPDATE audit_log SET subject_id = 'other' WHERE seq = 3"], 3, "changed", id="changed"
    ),
    # Copying entry 2's MAC onto a changed entry 3 does not help without the key.
    pytest.param(
        ["UPDATE audit_log SET action = 'x', mac = prev_mac WHERE seq = 3"], 3, "", id="re-mac"
    ),
    pytest.param(["DELETE FROM audit_log WHERE seq = 2"], 2, "missing", id="removed"),
    pytest.param(["DELETE FROM audit_log WHERE seq >= 4"], 4, "truncated", id="truncated"),
    # Moving the head back too needs its MAC, which needs the key.
    pytest.param(
        [
            "DELETE FROM audit_log WHERE seq >= 4",
            "UPDATE audit_head SET seq = 3, mac = (SELECT mac FROM audit_log WHERE seq = 3)",
        ],
        3,
        "head anchor changed",
        id="truncated-and-head-moved",
    ),
    pytest.param(
        ["UPDATE audit_head SET seq = 0, mac = NULL, head_mac = NULL"], 1, "beyond", id="reset"
    ),
]


@pytest.mark.parametrize(("statements", "first_bad", "problem"), TAMPERING)
def test_tampering_is_found_and_named(
    db: Database, statements: list[str], first_bad: int, problem: str
) -> None:
    append(db, FixedClock(START), 5)
    assert check(db)[0]
    ok, found, said = tamper(db, *statements)
    assert (ok, found) == (False, first_bad)
    assert problem in said


def test_concurrent_writers_get_one_gapless_chain(db: Database) -> None:
    clock = FixedClock(START)
    writers, each = 6, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def write(w: int) -> None:
        try:
            barrier.wait()
            for i in range(each):
                with db.session() as session:
                    record_audit(
                        session,
                        actor=f"u{w}",
                        role="housing-officer",
                        action="housing.accept",
                        subject_kind="housing_referral",
                        subject_id=f"w{w}-{i}",
                        practice_ods=None,
                        clock=clock,
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert check(db) == (True, None, None, writers * each)
    with db.session() as session:
        subjects = {r.subject_id for r in session.exec(select(AuditEntry)).all()}
    assert len(subjects) == writers * each
