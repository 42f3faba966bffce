"""Checking the audit chain: a changed, removed, inserted or cut-off entry is found.

What it cannot find (documented in docs/ig-clinical-safety.md): someone who holds the
HMAC key as well as write access can re-forge everything; someone who saved an old copy
of the whole log and head row can put that copy back (a rollback) unless a head they
noted elsewhere (``audit verify`` prints it) is checked with ``--expect``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from healthy_homes.audit.chain import (
    GENESIS,
    HEAD_ID,
    as_fields,
    entry_mac,
    head_mac,
    macs_equal,
)
from healthy_homes.crypto import KeyRing
from healthy_homes.store.audit_models import AuditEntry, AuditHead


@dataclass(frozen=True)
class VerifyResult:
    """The outcome: ``first_bad`` is the first sequence number that fails, if any."""

    entries: int
    last_mac: str | None
    first_bad: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the whole log checked out."""
        return self.problem is None


@dataclass(frozen=True)
class _Head:
    seq: int
    mac: str | None
    head_mac: str | None


def verify_entries(
    rows: Iterable[Mapping[str, Any]],
    head: tuple[int, str | None, str | None] | None = None,
    ring: KeyRing | None = None,
) -> VerifyResult:
    """Check entries in sequence order, then (if given) the head's seq, mac and head_mac."""
    expected, prev, count = 1, GENESIS, 0
    for row in rows:
        seq = int(row["seq"])
        if seq != expected:
            problem = "entry missing (sequence gap)" if seq > expected else "entry out of order"
            return VerifyResult(count, prev, expected, problem)
        if not macs_equal(str(row["prev_mac"]), prev):
            return VerifyResult(count, prev, seq, "chain broken: previous MAC does not match")
        if not macs_equal(entry_mac(dict(row), ring), str(row["mac"])):
            return VerifyResult(count, prev, seq, "entry changed: MAC does not match")
        prev, expected, count = str(row["mac"]), expected + 1, count + 1
    last = prev if count else None
    if head is None:
        return VerifyResult(count, last)
    return _check_head(_Head(*head), count, last, ring)


def _check_head(head: _Head, count: int, last: str | None, ring: KeyRing | None) -> VerifyResult:
    if head.seq == 0 and head.mac is None and head.head_mac is None:
        if count:
            return VerifyResult(count, last, 1, "head anchor reset while entries exist")
        return VerifyResult(0, None)
    if not macs_equal(head_mac(head.seq, head.mac, ring), head.head_mac):
        return VerifyResult(count, last, head.seq, "head anchor changed: its MAC does not match")
    if head.seq > count:
        return VerifyResult(count, last, count + 1, "entries missing at the end (log truncated)")
    if head.seq < count:
        return VerifyResult(count, last, head.seq + 1, "entries beyond the head anchor")
    if not macs_equal(head.mac, last):
        return VerifyResult(count, last, head.seq, "head anchor does not match the last entry")
    return VerifyResult(count, last)


def iter_entries(
    session: Session, *, upto: int | None = None, after: int = 0, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Entries in sequence order (after ``after``, up to ``upto``) as dicts, in batches."""
    while True:
        query = select(AuditEntry).where(col(AuditEntry.seq) > after)
        if upto is not None:
            query = query.where(col(AuditEntry.seq) <= upto)
        rows = session.scalars(query.order_by(col(AuditEntry.seq)).limit(batch)).all()
        if not rows:
            return
        yield from (as_fields(row) for row in rows)
        after = rows[-1].seq
        session.expunge_all()  # bounded memory on a long log


def read_head(session: Session) -> tuple[int, str | None, str | None] | None:
    """The head row's (seq, mac, head_mac), or None when it is missing."""
    row = session.execute(
        select(col(AuditHead.seq), col(AuditHead.mac), col(AuditHead.head_mac)).where(
            col(AuditHead.id) == HEAD_ID
        )
    ).first()
    return None if row is None else (int(row[0]), row[1], row[2])


def verify_log(session: Session, ring: KeyRing | None = None) -> VerifyResult:
    """Verify the database's whole audit log against its head anchor."""
    head = read_head(session)
    if head is None:
        return VerifyResult(0, None, None, "head anchor row missing (deleted?)")
    # Only entries up to the head read first are checked, so an append committed while
    # we read is not mistaken for an entry the head does not cover.
    result = verify_entries(iter_entries(session, upto=head[0]), head, ring)
    if not result.ok:
        return result
    last = session.scalar(select(func.max(AuditEntry.seq)))
    if last is not None and last > head[0]:
        now = read_head(session)
        if now is None or now[0] < last:
            return VerifyResult(
                result.entries, result.last_mac, head[0] + 1, "entries beyond the head anchor"
            )
    return result
