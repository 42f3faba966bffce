"""Rotating the HMAC key re-seals the chain: it verifies under the new key only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from healthy_homes.audit import verify_log
from healthy_homes.audit.chain import pseudonym
from healthy_homes.audit.reseal import reseal
from healthy_homes.clock import FixedClock
from healthy_homes.crypto import KeyRing, get_keyring, set_keyring, write_key_file
from healthy_homes.errors import AuditError
from healthy_homes.keys.rotation import rotate
from healthy_homes.store.audit_models import AuditEntry
from healthy_homes.store.db import Database
from healthy_homes.store.models import RegisterMembership
from tests.audit.test_chain import append, tamper

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_reseal_moves_the_chain_to_the_new_key(db: Database) -> None:
    clock = FixedClock(START)
    with db.session() as session:  # the store still knows these patients
        for i in range(3):
            session.add(
                RegisterMembership(
                    practice_ods="A12345",
                    register_name="copd",
                    patient_id=f"pat-{i}",
                    updated_at=START,
                )
            )
    append(db, clock, 4)  # pat-3 is known only to the audit log (purged since)
    old: KeyRing = get_keyring()
    new = old.with_new_active_key(new_hmac=True)
    assert reseal(db, old, new, clock) == 4
    with db.session() as session:
        assert not verify_log(session, old).ok
        result = verify_log(session, new)
        assert result.ok and result.entries == 5
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    assert rows[-1].action == "keys.rotated"
    assert [r.patient for r in rows[:3]] == [pseudonym("A12345", f"pat-{i}", new) for i in range(3)]
    assert rows[3].patient == pseudonym("A12345", "pat-3", old)  # unknown now: kept as it was
    set_keyring(new)
    with db.session() as session:
        assert verify_log(session).ok
    # The triggers are back.
    with pytest.raises(DBAPIError), db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'x' WHERE seq = 1"))


def test_a_tampered_chain_is_not_resealed(db: Database) -> None:
    append(db, FixedClock(START), 3)
    ok, _, _ = tamper(db, "UPDATE audit_log SET actor = 'x' WHERE seq = 2")
    assert not ok
    old = get_keyring()
    with pytest.raises(AuditError, match="entry 2"):
        reseal(db, old, old.with_new_active_key(new_hmac=True), FixedClock(START))
    with db.session() as session:
        assert verify_log(session, old).first_bad == 2


def test_keys_rotate_leaves_the_audit_log_verifiable(db: Database, tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, get_keyring())
    append(db, FixedClock(START), 3)
    rotate(db, key_file)  # installs the new keyring in the process
    with db.session() as session:
        result = verify_log(session)
    assert result.ok and result.entries == 4
