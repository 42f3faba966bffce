"""What an officer does to a referral, and the Task moves it makes.

Moves follow the FHIR Task state machine as the receiver plays it in the closed-loop
pattern (https://hl7.org/fhir/R4/task.html#statemachine): received → accepted or
rejected (with a reason); accepted → in-progress when contact or a visit is recorded;
→ completed with the outcomes as ``Task.output``; failed (with a reason) when the work
cannot go on. Every move bumps the Task's version, which is what the sender's poll sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from healthy_homes.audit import events as audit_events
from healthy_homes.audit.chain import Actor
from healthy_homes.housing.resources import OUTCOMES
from healthy_homes.store.models import HousingActivity, HousingReferral

#: Why a team turns a referral down (issue 6 names the first three).
DECLINE_REASONS: dict[str, str] = {
    "no-capacity": "No capacity",
    "not-eligible": "Not eligible",
    "could-not-contact": "Could not contact",
    "out-of-area": "Outside our area",
    "other": "Another reason",
}
OPEN = ("received", "accepted", "in-progress")
PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
ACTIVITY_KINDS = ("contact", "visit")


class NotAllowed(Exception):
    """The referral is not in a state where this can be done."""


def _move(row: HousingReferral, status: str, now: datetime, reason: str | None = None) -> None:
    row.status, row.status_reason = status, reason
    row.version += 1
    row.updated_at = now
    if status == "in-progress" and row.started_at is None:
        row.started_at = now
    if status in ("completed", "failed", "rejected"):
        row.started_at = row.started_at or now
        row.ended_at = now


@dataclass(frozen=True)
class By:
    """Who acted: the name the team's activity log shows, and the audit log's actor."""

    name: str
    actor: Actor


def _by(by: By | str) -> By:
    # A bare name comes only from scripts and tests acting without a signed-in user.
    return by if isinstance(by, By) else By(by, Actor(by, audit_events.HOUSING_ROLE))


def _log(
    session: Session, row: HousingReferral, kind: str, text: str, by: By | str, now: datetime
) -> None:
    who = _by(by)
    activity = HousingActivity(referral_id=row.id, kind=kind, text=text[:1000], by=who.name, at=now)
    session.add(activity)
    # Every officer action passes here, so each is audited exactly once, by user id.
    audit_events.housing_action(
        session, kind, row.id, row.team_id, row.referral_identifier, who.actor, now
    )


def accept(session: Session, row: HousingReferral, by: By | str, now: datetime) -> None:
    """Take the referral on."""
    if row.status != "received":
        raise NotAllowed("only a newly received referral can be accepted")
    _move(row, "accepted", now)
    _log(session, row, "accepted", "Accepted", by, now)
    session.add(row)


def decline(
    session: Session, row: HousingReferral, reason: str, detail: str, by: By | str, now: datetime
) -> None:
    """Turn it down (rejected) or, once accepted, give up on it (failed), with a reason."""
    if reason not in DECLINE_REASONS:
        raise ValueError("choose a reason")
    if row.status not in OPEN:
        raise NotAllowed("this referral is already closed")
    label = DECLINE_REASONS[reason]
    text = f"{label}: {detail}" if detail else label
    _move(row, "rejected" if row.status == "received" else "failed", now, label)
    _log(session, row, "declined", text, by, now)
    session.add(row)


def record(
    session: Session, row: HousingReferral, kind: str, text: str, by: By | str, now: datetime
) -> None:
    """Record a contact or a visit; the first one starts the work (in-progress)."""
    if kind not in ACTIVITY_KINDS:
        raise ValueError("unknown activity")
    if not text:
        raise ValueError("describe what happened")
    if row.status not in ("accepted", "in-progress"):
        raise NotAllowed("accept the referral before recording contact or visits")
    if row.status == "accepted":
        _move(row, "in-progress", now)
    _log(session, row, kind, text, by, now)
    session.add(row)


def complete(
    session: Session,
    row: HousingReferral,
    outcomes: Sequence[str],
    note: str,
    by: By | str,
    now: datetime,
) -> None:
    """Close the referral with what was done: the practice sees it as ``Task.output``."""
    chosen = [o for o in dict.fromkeys(outcomes) if o in OUTCOMES]
    if not chosen:
        raise ValueError("choose at least one outcome")
    if row.status not in ("accepted", "in-progress"):
        raise NotAllowed("accept the referral before recording its outcome")
    row.outputs = chosen
    _move(row, "completed", now)
    summary = "; ".join(OUTCOMES[o] for o in chosen)
    _log(session, row, "outcome", f"{summary}. {note}" if note else summary, by, now)
    session.add(row)


#: States in which the sender may still withdraw a referral (consent withdrawn).
WITHDRAWABLE = ("received", "accepted", "in-progress", "requested")


def withdraw_by_sender(row: HousingReferral, now: datetime) -> bool:
    """The referrer withdrew (consent withdrawn): cancel it and keep no patient data.

    Returns whether anything changed (a repeat, or a closed referral, changes nothing).
    """
    if row.status not in WITHDRAWABLE:
        return False
    row.status, row.status_reason = "cancelled", "Withdrawn by the referrer"
    row.version += 1
    row.updated_at = now
    # Only that a referral came and went stays: the consent behind it is gone.
    row.dataset = {"practice_ods": row.dataset.get("practice_ods")}
    return True


def queue(session: Session, team_id: str) -> list[HousingReferral]:
    """The team's open referrals, most urgent first, then oldest first."""
    rows = session.exec(
        select(HousingReferral)
        .where(HousingReferral.team_id == team_id)
        .where(col(HousingReferral.status).in_(OPEN))
    ).all()
    return sorted(rows, key=lambda r: (PRIORITY_RANK.get(r.priority, 3), r.received_at, r.id))


def closed(session: Session, team_id: str, limit: int = 50) -> list[HousingReferral]:
    """The team's most recently closed referrals."""
    rows = session.exec(
        select(HousingReferral)
        .where(HousingReferral.team_id == team_id)
        .where(col(HousingReferral.status).not_in(OPEN))
        .order_by(col(HousingReferral.updated_at).desc())
        .limit(limit)
    ).all()
    return list(rows)


def activity(session: Session, referral_id: str) -> list[HousingActivity]:
    """What was done on a referral, oldest first."""
    query = (
        select(HousingActivity)
        .where(HousingActivity.referral_id == referral_id)
        .order_by(col(HousingActivity.at), col(HousingActivity.id))
    )
    return list(session.exec(query).all())


def team_referral(session: Session, team_id: str, referral_id: str) -> HousingReferral | None:
    """The referral if it belongs to the team; None otherwise (the caller answers 404)."""
    row = session.get(HousingReferral, referral_id)
    return row if row is not None and row.team_id == team_id else None
