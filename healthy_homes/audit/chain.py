"""Appending to the hash-chained audit log.

Each entry has a sequence number (1, 2, 3... no gaps), the previous entry's MAC and its
own MAC: HMAC-SHA256 over the canonical JSON of every field, under a key derived from
the keyring's HMAC key (``keyed_hash``, purpose ``audit-chain``). Someone with database
access alone cannot compute a MAC, so cannot change, insert or remove an entry without
the verifier noticing. The head row (``audit_head``) holds the last sequence number and
MAC, MACed in turn, so cutting entries off the end is noticed as well.

Appends are serialised by the head row: the first statement of an append is an UPDATE
of that row, which takes its row lock on PostgreSQL (a second writer waits until the
first commits, then sees its result) and the database write lock on SQLite. The entry
is written in the caller's transaction, so it commits or rolls back with the action.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session, col

from healthy_homes.clock import Clock
from healthy_homes.crypto import KeyRing, keyed_hash
from healthy_homes.errors import AuditError
from healthy_homes.store.audit_models import AuditEntry, AuditHead

#: keyed_hash purposes: one for entry MACs, one for the head, one for patient pseudonyms.
CHAIN_PURPOSE = "audit-chain"
HEAD_PURPOSE = "audit-head"
PATIENT_PURPOSE = "audit-patient"
#: prev_mac of the first entry.
GENESIS = "0" * 64
HEAD_ID = 1
#: The fields covered by an entry's MAC, in the canonical JSON (besides prev_mac).
MAC_FIELDS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "subject_kind",
    "subject_id",
    "practice_ods",
    "patient",
    "detail",
    "prev_mac",
)

Detail = dict[str, str | int | float | bool | None]


@dataclass(frozen=True)
class Actor:
    """Who did something: a user id (never a patient) and their role."""

    user: str
    role: str


SYSTEM = Actor("system", "system")


def _keyed(purpose: str, value: str, ring: KeyRing | None) -> str:
    # An explicit keyring only while keys rotate (audit/reseal.py); else the process one.
    return keyed_hash(purpose, value) if ring is None else ring.keyed_hash(purpose, value)


def pseudonym(practice_ods: str, patient_id: str, ring: KeyRing | None = None) -> str:
    """The patient's pseudonymous id in the audit log (keyed, so not reversible by lookup)."""
    return _keyed(PATIENT_PURPOSE, f"{practice_ods}/{patient_id}", ring)


def canonical(fields: dict[str, Any]) -> str:
    """Canonical JSON of an entry's MACed fields: sorted keys, no spaces, UTC ISO times."""
    values = {name: fields.get(name) for name in MAC_FIELDS}
    at = values["at"]
    if isinstance(at, datetime):
        values["at"] = at.astimezone(UTC).isoformat()
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_mac(fields: dict[str, Any], ring: KeyRing | None = None) -> str:
    """The MAC an entry with these fields must carry."""
    return _keyed(CHAIN_PURPOSE, canonical(fields), ring)


def head_mac(seq: int, mac: str | None, ring: KeyRing | None = None) -> str:
    """The MAC binding the head row's sequence number to the last entry's MAC."""
    return _keyed(HEAD_PURPOSE, f"{seq}:{mac or GENESIS}", ring)


def macs_equal(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two hex MACs (None never matches)."""
    return a is not None and b is not None and hmac.compare_digest(a, b)


def as_fields(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the plain dict the MAC, the verifier and the export use."""
    return {name: getattr(entry, name) for name in (*MAC_FIELDS, "mac")}


@dataclass(frozen=True)
class AuditEvent:
    """One entry to append: its fields before the chain gives it a sequence and MACs."""

    actor: str
    role: str
    action: str
    subject_kind: str
    subject_id: str
    practice_ods: str | None
    patient_id: str | None = None
    detail: Detail | None = None


def record_audit(
    session: Session,
    *,
    actor: str,
    role: str,
    action: str,
    subject_kind: str,
    subject_id: str,
    practice_ods: str | None,
    clock: Clock,
    patient_id: str | None = None,
    detail: Detail | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction; the caller commits it with the action."""
    event = AuditEvent(
        actor, role, action, subject_kind, subject_id, practice_ods, patient_id, detail
    )
    return AuditEntry(**record_audit_many(session, [event], clock)[0])


def record_audit_many(
    session: Session, events: Sequence[AuditEvent], clock: Clock
) -> list[dict[str, Any]]:
    """Append several entries in order, in the caller's transaction, under one head lock.

    The chain is exactly what as many :func:`record_audit` calls would make (consecutive
    sequence numbers, each entry MACed over its predecessor's MAC), but the head row is
    locked and rewritten once and the entries go in as one multi-row insert.
    """
    if not events:
        return []
    practice = events[0].practice_ods
    locked = session.execute(
        update(AuditHead)
        .where(col(AuditHead.id) == HEAD_ID)
        .values(seq=col(AuditHead.seq) + len(events))
    )
    if getattr(locked, "rowcount", 0) != 1:
        raise AuditError(
            "audit head row missing: run 'healthy-homes db upgrade'", practice=practice
        )
    last, prev = session.execute(
        select(col(AuditHead.seq), col(AuditHead.mac)).where(col(AuditHead.id) == HEAD_ID)
    ).one()
    now = clock.now().astimezone(UTC)
    prev_mac: str = prev or GENESIS
    rows: list[dict[str, Any]] = []
    for seq, event in enumerate(events, start=last - len(events) + 1):
        row = _row(seq, now, event, prev_mac)
        row["mac"] = prev_mac = entry_mac(row)
        rows.append(row)
    session.execute(insert(AuditEntry), rows)
    session.execute(
        update(AuditHead)
        .where(col(AuditHead.id) == HEAD_ID)
        .values(mac=prev_mac, head_mac=head_mac(last, prev_mac), updated_at=now)
    )
    return rows


def _row(seq: int, now: datetime, event: AuditEvent, prev_mac: str) -> dict[str, Any]:
    practice, patient = event.practice_ods, event.patient_id
    return {
        "seq": seq,
        "at": now,
        "actor": event.actor[:120],
        "role": event.role[:40],
        "action": event.action[:40],
        "subject_kind": event.subject_kind[:40],
        "subject_id": event.subject_id[:64],
        "practice_ods": practice,
        "patient": pseudonym(practice or "", patient) if patient else None,
        "detail": dict(event.detail) if event.detail else None,
        "prev_mac": prev_mac,
    }
