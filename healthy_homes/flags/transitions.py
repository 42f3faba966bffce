"""Flag lifecycle moves: raised → shown → an outcome (or snoozed) → retired.

Each move is recorded as a :class:`~healthy_homes.store.models.FlagEvent` in the same
transaction as the change. Repeating a move (a retried request, the same CDS Hooks
card reported twice) changes nothing and records nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock
from healthy_homes.errors import FlagError, FlagStateError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.events import EventKind, Source, add_event
from healthy_homes.flags.fhir_sync import sync_fhir_flag
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    OPEN_FLAG_STATUSES,
    OUTCOME_FLAG_STATUSES,
    FlagEvent,
    FlagRecord,
    FlagStatus,
)

OPEN = frozenset(s.value for s in OPEN_FLAG_STATUSES)
FINAL = frozenset(s.value for s in OUTCOME_FLAG_STATUSES)


def get_flag(session: Session, flag_id: str) -> FlagRecord:
    """The flag with this id, or FlagError."""
    flag = session.get(FlagRecord, flag_id)
    if flag is None:
        raise FlagError(f"flag {flag_id} not found")
    return flag


def flags_for_patient(
    db: Database, practice: str, patient_id: str, *, open_only: bool = False
) -> list[FlagRecord]:
    """A patient's flags at a practice, newest first (only open ones if asked)."""
    query = select(FlagRecord).where(
        FlagRecord.practice_ods == practice, FlagRecord.patient_id == patient_id
    )
    if open_only:
        query = query.where(col(FlagRecord.status).in_(OPEN))
    with db.session() as session:
        return list(session.exec(query.order_by(col(FlagRecord.created_at).desc())))


def showable(flag: FlagRecord, now_ts: float) -> bool:
    """Open, and not snoozed any more."""
    if flag.status not in OPEN:
        return False
    return flag.snoozed_until is None or flag.snoozed_until.timestamp() <= now_ts


def mark_shown(
    db: Database,
    flag_id: str,
    *,
    by: str | None,
    clock: Clock,
    source: Source | str = Source.API,
    hook: str | None = None,
    event_id: str | None = None,
) -> FlagRecord:
    """The prompt was put in front of a clinician; ``event_id`` (a card uuid) makes it once."""
    now = clock.now()
    with db.session() as session:
        if event_id is not None and session.get(FlagEvent, event_id) is not None:
            return get_flag(session, flag_id)
        flag = get_flag(session, flag_id)
        if flag.status not in OPEN:
            raise FlagStateError(f"flag {flag_id} is {flag.status}; it can no longer be shown")
        flag.status, flag.shown_at, flag.updated_at = FlagStatus.SHOWN, now, now
        flag.snoozed_until = None
        session.add(flag)
        add_event(
            session,
            flag,
            EventKind.SHOWN,
            now,
            actor=by,
            source=source,
            hook=hook,
            event_id=event_id,
        )
        return flag


def record_outcome(
    db: Database,
    flag_id: str,
    outcome: FlagStatus,
    *,
    by: str | None,
    clock: Clock,
    reason: str | None = None,
    source: Source | str = Source.API,
    snooze_for: timedelta | None = None,
) -> FlagRecord:
    """Record what the clinician concluded (or that they snoozed it), locally only.

    An open flag takes any outcome. The same outcome again is a no-op. A patient who
    changes their mind may still accept after another outcome; nothing else replaces one.
    """
    if outcome.value not in FINAL | {FlagStatus.SNOOZED.value}:
        raise FlagStateError(f"'{outcome.value}' is not an outcome")
    now = clock.now()
    with db.session() as session:
        flag = get_flag(session, flag_id)
        if flag.outcome == outcome.value and (outcome.value in FINAL or flag.status == outcome):
            return flag
        if outcome == FlagStatus.SNOOZED and flag.status not in OPEN:
            raise FlagStateError(f"flag {flag_id} is {flag.status}; it cannot be snoozed")
        changing_mind = outcome == FlagStatus.ACCEPTED and flag.outcome != FlagStatus.ACCEPTED
        if flag.status not in OPEN and flag.outcome is not None and not changing_mind:
            raise FlagStateError(
                f"flag {flag_id} already has the outcome '{flag.outcome}'",
                practice=flag.practice_ods,
            )
        flag.outcome, flag.outcome_at, flag.updated_at = outcome.value, now, now
        flag.outcome_by, flag.outcome_reason = (by or None), (reason[:500] if reason else None)
        if outcome == FlagStatus.SNOOZED:
            flag.status, flag.snoozed_until = FlagStatus.SNOOZED, now + (snooze_for or timedelta())
        else:
            flag.status, flag.snoozed_until = outcome, None
        session.add(flag)
        add_event(
            session, flag, EventKind(outcome.value), now, actor=by, reason=reason, source=source
        )
        audit_events.flag_outcome(session, flag, outcome.value, by, str(source), clock)
        return flag


def retire(
    db: Database,
    flag_id: str,
    *,
    clock: Clock,
    reason: str | None = None,
    source: Source | str = Source.API,
) -> FlagRecord:
    """The flag is finished with (its FHIR Flag is inactive); retiring twice is a no-op."""
    now = clock.now()
    with db.session() as session:
        flag = get_flag(session, flag_id)
        if flag.status == FlagStatus.RETIRED:
            return flag
        flag.status, flag.retired_at, flag.updated_at = FlagStatus.RETIRED, now, now
        session.add(flag)
        add_event(session, flag, EventKind.RETIRED, now, reason=reason, source=source)
        return flag


async def conclude(
    db: Database,
    client: FhirClient,
    flag_id: str,
    outcome: FlagStatus,
    *,
    by: str | None,
    clock: Clock,
    reason: str | None = None,
    source: Source | str = Source.API,
    snooze_for: timedelta | None = None,
) -> FlagRecord:
    """Record an outcome, inactivate the FHIR Flag, then retire; a snooze keeps it open.

    If the practice server cannot be reached the outcome stays recorded and
    :func:`sync_pending_flags` finishes the job later.
    """
    flag = record_outcome(
        db,
        flag_id,
        outcome,
        by=by,
        clock=clock,
        reason=reason,
        source=source,
        snooze_for=snooze_for,
    )
    if flag.status not in FINAL:
        return flag
    await sync_fhir_flag(db, client, flag, clock)
    return retire(db, flag.id, clock=clock, reason=f"outcome {flag.outcome}", source=source)


async def sync_pending_flags(db: Database, client: FhirClient, practice: str, clock: Clock) -> int:
    """Finish every flag whose FHIR Flag lags behind (after a failure or a restart)."""
    with db.session() as session:
        lagging = list(
            session.exec(
                select(FlagRecord).where(
                    FlagRecord.practice_ods == practice,
                    or_(
                        col(FlagRecord.status).in_(FINAL),
                        and_(
                            col(FlagRecord.status).in_(OPEN), col(FlagRecord.fhir_status).is_(None)
                        ),
                        and_(
                            col(FlagRecord.status) == FlagStatus.RETIRED.value,
                            col(FlagRecord.fhir_status) == "active",
                        ),
                    ),
                )
            )
        )
    for flag in lagging:
        await sync_fhir_flag(db, client, flag, clock)
        if flag.status in FINAL:
            retire(db, flag.id, clock=clock, reason=f"outcome {flag.outcome}")
    return len(lagging)
