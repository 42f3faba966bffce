"""Re-sealing the audit chain when the HMAC key rotates.

Entry MACs and patient pseudonyms are keyed hashes; a new HMAC key would leave every
earlier entry failing verification and every earlier pseudonym unlinkable. So, while
both keyrings are in hand, the chain is first verified under the old key (a broken chain
is refused: re-sealing must never launder tampering), then every MAC is recomputed under
the new key, pseudonyms of patients the store still knows are mapped to their new
values, the head is re-MACed and a ``keys.rotated`` entry appended. All of it is one
transaction, inside which the append-only triggers are lifted and restored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select, text
from sqlmodel import Session, col

from healthy_homes.audit.chain import (
    GENESIS,
    SYSTEM,
    entry_mac,
    head_mac,
    pseudonym,
    record_audit,
)
from healthy_homes.audit.verify import iter_entries, verify_log
from healthy_homes.clock import Clock
from healthy_homes.crypto import KeyRing, get_keyring, set_keyring
from healthy_homes.errors import AuditError
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentRecord,
    FlagRecord,
    PatientStatus,
    Referral,
    RegisterMembership,
)

#: Tables whose (practice_ods, patient_id) pairs let old pseudonyms be mapped to new ones.
PATIENT_TABLES: tuple[Any, ...] = (
    RegisterMembership,
    FlagRecord,
    ConsentRecord,
    Referral,
    PatientStatus,
)
PG_TRIGGERS = (("audit_log", "audit_log_append_only"), ("audit_head", "audit_head_forward"))


@contextmanager
def _triggers_lifted(conn: Connection) -> Iterator[None]:
    """Inside the caller's transaction: drop (SQLite) or disable (PostgreSQL), then restore."""
    if conn.dialect.name == "sqlite":
        saved = conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('audit_log', 'audit_head')"
            )
        ).all()
        for name, _sql in saved:
            conn.execute(text(f'DROP TRIGGER "{name}"'))
        yield
        for _name, sql in saved:
            conn.execute(text(sql))
        return
    for table, trigger in PG_TRIGGERS:
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
    yield
    for table, trigger in PG_TRIGGERS:
        conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))


def _pseudonym_map(conn: Connection, old: KeyRing, new: KeyRing) -> dict[str, str]:
    known: set[tuple[str, str]] = set()
    for model in PATIENT_TABLES:
        query = select(col(model.practice_ods), col(model.patient_id)).distinct()
        known.update((ods, pid) for ods, pid in conn.execute(query))
    return {pseudonym(ods, pid, old): pseudonym(ods, pid, new) for ods, pid in known}


def reseal(db: Database, old: KeyRing, new: KeyRing, clock: Clock) -> int:
    """Move the chain from ``old``'s HMAC key to ``new``'s; returns the entries re-sealed."""
    with db.session() as session:
        checked = verify_log(session, old)
        if not checked.ok:
            raise AuditError(
                f"audit log fails verification at entry {checked.first_bad} "
                f"({checked.problem}); not re-sealing it under a new key"
            )
        conn = session.connection()
        mapping = _pseudonym_map(conn, old, new)
        rows = list(iter_entries(session))
        prev = GENESIS
        changes: list[dict[str, Any]] = []
        for row in rows:
            patient = row["patient"]
            row["patient"] = mapping.get(patient, patient) if patient else None
            row["prev_mac"] = prev
            prev = entry_mac(row, new)
            changes.append({"s": row["seq"], "p": row["patient"], "pm": row["prev_mac"], "m": prev})
        with _triggers_lifted(conn):
            if changes:
                conn.execute(
                    text(
                        "UPDATE audit_log SET patient = :p, prev_mac = :pm, mac = :m WHERE seq = :s"
                    ),
                    changes,
                )
            conn.execute(
                text("UPDATE audit_head SET mac = :m, head_mac = :h WHERE id = 1"),
                {
                    "m": prev if rows else None,
                    "h": head_mac(len(rows), prev, new) if rows else None,
                },
            )
        _append_rotation(session, new, clock, len(rows))
    return len(rows)


def _append_rotation(session: Session, new: KeyRing, clock: Clock, count: int) -> None:
    # record_audit seals with the process keyring: the new one, for this entry only.
    previous = get_keyring()
    set_keyring(new)
    try:
        record_audit(
            session,
            actor=SYSTEM.user,
            role=SYSTEM.role,
            action="keys.rotated",
            subject_kind="keyring",
            subject_id=new.active_key_id,
            practice_ods=None,
            detail={"resealed": count},
            clock=clock,
        )
    finally:
        set_keyring(previous)
