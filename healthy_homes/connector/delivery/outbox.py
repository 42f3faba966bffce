"""The referral outbox: claims with a lease, and every move of an entry.

A claim is one statement. On PostgreSQL the due rows are picked with ``FOR UPDATE
SKIP LOCKED`` (as APScheduler 4's SQLAlchemy data store does), so several workers
never wait on, nor take, each other's rows; on SQLite the one writer makes the
``UPDATE ... WHERE id IN (SELECT ... LIMIT n) ... RETURNING`` atomic by itself. A
claim sets the lease; a worker that dies simply lets it expire, and the entry is due
again. Moves after a send (delivered, retry, dead) only apply while the worker still
holds the lease, so a worker that lost its lease cannot undo a newer worker's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Update, and_, or_, select, update
from sqlmodel import Session, col

from healthy_homes.audit import Actor, AuditEvent, record_audit_many
from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock
from healthy_homes.connector.delivery.alerts import raise_alert
from healthy_homes.errors import ReferralError
from healthy_homes.reporting.facts import set_remote_status
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, OutboxState, Referral, ReferralStatus

DEAD_LETTER = "referral-dead-letter"


@dataclass(frozen=True)
class Claim:
    """An entry this worker holds until its lease expires."""

    id: int
    referral_id: str
    housing_service_id: str
    attempts: int
    owner: str


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            col(OutboxEntry.state) == OutboxState.PENDING,
            col(OutboxEntry.next_attempt_at) <= now,
        ),
        and_(
            col(OutboxEntry.state) == OutboxState.IN_FLIGHT,
            col(OutboxEntry.lease_expires_at) <= now,
        ),
    )


def claim(db: Database, owner: str, limit: int, lease: timedelta, clock: Clock) -> list[Claim]:
    """Take up to ``limit`` due entries (oldest due first) under a lease for ``owner``."""
    if limit <= 0:
        return []
    now = clock.now()
    picked = (
        select(col(OutboxEntry.id))
        .where(_due(now))
        .order_by(col(OutboxEntry.next_attempt_at), col(OutboxEntry.id))
        .limit(limit)
    )
    with db.session() as session:
        if db.engine.dialect.name == "postgresql":
            # Pick, then update, in one transaction. Inside an UPDATE, PostgreSQL may
            # re-run an "IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" and take far more
            # than n rows (one worker claimed a whole 2,000-entry backlog).
            ids = list(session.scalars(picked.with_for_update(skip_locked=True)))
            rows = session.execute(_claiming(col(OutboxEntry.id).in_(ids), owner, lease, now)).all()
        else:
            chosen = col(OutboxEntry.id).in_(picked.scalar_subquery())
            rows = session.execute(_claiming(chosen, owner, lease, now)).all()
    return [Claim(int(r[0]), str(r[1]), str(r[2]), int(r[3]), owner) for r in rows]


def _claiming(chosen: ColumnElement[bool], owner: str, lease: timedelta, now: datetime) -> Update:
    return (
        update(OutboxEntry)
        .where(chosen, _due(now))
        .values(
            state=OutboxState.IN_FLIGHT,
            lease_owner=owner,
            lease_expires_at=now + lease,
            attempts=col(OutboxEntry.attempts) + 1,
            updated_at=now,
        )
        .returning(
            col(OutboxEntry.id),
            col(OutboxEntry.referral_id),
            col(OutboxEntry.housing_service_id),
            col(OutboxEntry.attempts),
        )
    )


def _held(session: Session, held: Claim) -> OutboxEntry | None:
    row = session.get(OutboxEntry, held.id)
    if row is None or row.state != OutboxState.IN_FLIGHT or row.lease_owner != held.owner:
        return None
    return row


def _release(row: OutboxEntry, state: OutboxState, now: datetime) -> None:
    row.state, row.lease_owner, row.lease_expires_at, row.updated_at = state, None, None, now


@dataclass(frozen=True)
class Delivered:
    """A transport's receipt for a held entry, waiting to be recorded."""

    held: Claim
    remote_ref: str | None
    remote_status: str | None


def mark_delivered(
    db: Database,
    held: Claim,
    clock: Clock,
    *,
    remote_ref: str | None,
    remote_status: str | None,
) -> None:
    """Record the transport's receipt: the entry is done and the referral sent.

    Recorded even if the lease was lost meanwhile (the receiver has it either way);
    only a cancellation stays as it is.
    """
    mark_delivered_many(db, [Delivered(held, remote_ref, remote_status)], clock)


def mark_delivered_many(db: Database, receipts: Sequence[Delivered], clock: Clock) -> None:
    """Record several receipts in one transaction, each as :func:`mark_delivered` would."""
    if not receipts:
        return
    now = clock.now()
    with db.session() as session:
        # Two queries load the batch; the lookups below are then served by the session
        # (which holds loaded rows only weakly: ``referrals`` keeps them in it).
        entry_ids = [r.held.id for r in receipts]
        query = select(OutboxEntry).where(col(OutboxEntry.id).in_(entry_ids))
        entries = {row.id: row for row in session.scalars(query)}
        referral_ids = [r.held.referral_id for r in receipts]
        query_referrals = select(Referral).where(col(Referral.id).in_(referral_ids))
        referrals = session.scalars(query_referrals).all()
        disclosures = []
        for receipt in receipts:
            row = entries.get(receipt.held.id)
            if row is not None and (event := _record_delivery(session, row, receipt, now)):
                disclosures.append(event)
        # One head-row lock and one insert for the batch's disclosures, not one per receipt.
        record_audit_many(session, disclosures, audit_events.at(now))
        del referrals


def _record_delivery(
    session: Session, row: OutboxEntry, receipt: Delivered, now: datetime
) -> AuditEvent | None:
    if row.state in (OutboxState.CANCELLED, OutboxState.DELIVERED):
        return None
    _release(row, OutboxState.DELIVERED, now)
    row.delivered_at, row.last_error = now, None
    session.add(row)
    referral = session.get(Referral, row.referral_id)
    event = audit_events.disclosure_event(
        row.referral_id, referral, row.housing_service_id, "outbox"
    )
    if referral is not None and referral.status != ReferralStatus.CANCELLED:
        referral.status, referral.sent_at, referral.last_error = ReferralStatus.SENT, now, None
        referral.attempts = max(referral.attempts, row.attempts)
        if receipt.remote_ref:
            referral.remote_task_url = receipt.remote_ref
        set_remote_status(session, referral, receipt.remote_status, now)
        session.add(referral)
    return event


def schedule_retry(
    db: Database, held: Claim, clock: Clock, delay: float, error: str, *, sent: bool = True
) -> bool:
    """Put the entry back to wait ``delay`` seconds; False if the lease was lost.

    ``sent=False`` (nothing left us, e.g. an open circuit breaker) gives the attempt back.
    """
    now = clock.now()
    with db.session() as session:
        row = _held(session, held)
        if row is None:
            return False
        _release(row, OutboxState.PENDING, now)
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.last_error = error[:500]
        if not sent:
            row.attempts = max(0, row.attempts - 1)
        session.add(row)
        _referral_error(session, row.referral_id, error, ReferralStatus.PENDING)
    return True


def mark_dead(db: Database, held: Claim, clock: Clock, error: str) -> bool:
    """Move the entry to the dead letters and raise its one alert (same transaction)."""
    now = clock.now()
    with db.session() as session:
        row = _held(session, held)
        if row is None:
            return False
        _release(row, OutboxState.DEAD, now)
        row.dead_count += 1
        row.last_error = error[:500]
        session.add(row)
        referral = _referral_error(session, row.referral_id, error, ReferralStatus.FAILED)
        raise_alert(
            session,
            kind=DEAD_LETTER,
            subject=row.referral_id,
            episode=row.dead_count,
            practice=referral.practice_ods if referral else None,
            message=(
                f"referral to housing service {row.housing_service_id} not delivered after "
                f"{row.attempts} attempt(s): {error}"
            )[:500],
            now=now,
        )
    return True


def mark_cancelled(db: Database, held: Claim, clock: Clock, reason: str) -> None:
    """Never send this entry (its consent is no longer in force, or it was cancelled)."""
    now = clock.now()
    with db.session() as session:
        row = session.get(OutboxEntry, held.id)
        if row is None or row.state == OutboxState.DELIVERED:
            return
        _release(row, OutboxState.CANCELLED, now)
        row.last_error = reason[:500]
        session.add(row)


def _referral_error(
    session: Session, referral_id: str, error: str, status: ReferralStatus
) -> Referral | None:
    referral = session.get(Referral, referral_id)
    if referral is not None and referral.status not in (
        ReferralStatus.CANCELLED,
        ReferralStatus.SENT,
    ):
        referral.status, referral.last_error = status, error[:500]
        session.add(referral)
    return referral


# -- operators ------------------------------------------------------------------------


def entry_for(session: Session, referral_id: str) -> OutboxEntry | None:
    """The outbox entry of a referral."""
    query = select(OutboxEntry).where(col(OutboxEntry.referral_id) == referral_id)
    return session.scalars(query).first()


def retry(
    db: Database, referral_id: str, clock: Clock, *, by: Actor = audit_events.OPERATOR
) -> OutboxEntry:
    """Send a dead (or waiting) referral again now, with a fresh count of attempts."""
    now = clock.now()
    with db.session() as session:
        row = entry_for(session, referral_id)
        if row is None:
            raise ReferralError("referral has no outbox entry", referral=referral_id)
        if row.state not in (OutboxState.DEAD, OutboxState.PENDING):
            raise ReferralError(f"referral is {row.state}; only dead or waiting ones retry")
        row.state, row.attempts, row.next_attempt_at, row.updated_at = (
            OutboxState.PENDING,
            0,
            now,
            now,
        )
        session.add(row)
        referral = session.get(Referral, referral_id)
        if referral is not None and referral.status == ReferralStatus.FAILED:
            referral.status = ReferralStatus.PENDING
            session.add(referral)
        audit_events.operator_action(session, "referral.retry", referral, referral_id, by, clock)
    return row


def retry_dead(db: Database, clock: Clock) -> int:
    """Retry every dead referral; returns how many."""
    with db.session() as session:
        query = select(col(OutboxEntry.referral_id)).where(
            col(OutboxEntry.state) == OutboxState.DEAD
        )
        dead = list(session.scalars(query))
    for referral_id in dead:
        retry(db, referral_id, clock)
    return len(dead)


def cancel(
    db: Database,
    referral_id: str,
    clock: Clock,
    reason: str,
    *,
    by: Actor = audit_events.OPERATOR,
) -> OutboxEntry:
    """Never send this referral (an operator's decision); refused once it went out."""
    now = clock.now()
    with db.session() as session:
        row = entry_for(session, referral_id)
        if row is None:
            raise ReferralError("referral has no outbox entry", referral=referral_id)
        if row.state == OutboxState.CANCELLED:
            return row
        if row.state in (OutboxState.DELIVERED, OutboxState.IN_FLIGHT):
            raise ReferralError(
                f"referral is {row.state}; it can no longer be cancelled here",
                referral=referral_id,
            )
        _release(row, OutboxState.CANCELLED, now)
        row.last_error = f"cancelled by operator: {reason}"[:500]
        session.add(row)
        referral = session.get(Referral, referral_id)
        if referral is not None and referral.status != ReferralStatus.SENT:
            referral.status, referral.cancelled_at = ReferralStatus.CANCELLED, now
            referral.cancel_reason = reason[:500]
            session.add(referral)
        audit_events.operator_action(session, "referral.cancel", referral, referral_id, by, clock)
    return row


def listing(
    db: Database, *, state: str | None = None, limit: int = 100
) -> list[tuple[OutboxEntry, Referral | None]]:
    """Outbox entries (newest first), with their referrals."""
    with db.session() as session:
        query = select(OutboxEntry).order_by(col(OutboxEntry.created_at).desc()).limit(limit)
        if state:
            query = query.where(col(OutboxEntry.state) == state)
        rows = list(session.scalars(query))
        return [(row, session.get(Referral, row.referral_id)) for row in rows]
