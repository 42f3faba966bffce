"""The audit entries the rest of the package writes: one call per kind of event.

Kept here so every disclosure and every human action is named the same way wherever
it happens (the consent service, the flag lifecycle, the housing inbox, the outbox).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from healthy_homes.audit.chain import SYSTEM, Actor, AuditEvent, record_audit, record_audit_many
from healthy_homes.clock import Clock, FixedClock
from healthy_homes.crypto import keyed_hash
from healthy_homes.store.models import FlagRecord, Referral

#: A flag outcome as the audit log names it: accepting the referral is giving consent.
FLAG_ACTIONS = {
    "accepted": "consent.given",
    "declined": "consent.declined",
    "snoozed": "flag.snoozed",
    "not-appropriate": "flag.not-appropriate",
    "dismissed": "flag.dismissed",
}
OPERATOR = Actor("operator", "operator")
#: Who changes a team's settings from the command line (the pages pass the signed-in user).
HOUSING_ADMIN = Actor("housing-admin", "housing-manager")
CLINICIAN_ROLE = "clinician"
HOUSING_ROLE = "housing-officer"
#: Keyed-hash purpose for a username nobody has (a failed sign-in's actor).
SIGN_IN_PURPOSE = "audit-sign-in"


def at(when: datetime) -> Clock:
    """A clock standing at ``when``, for callers that hold a time rather than a clock."""
    return FixedClock(when)


def flag_outcome(
    session: Session, flag: FlagRecord, outcome: str, by: str | None, source: str, clock: Clock
) -> None:
    """A clinician concluded or snoozed a flag (consent given or declined included)."""
    record_audit(
        session,
        actor=by or "unknown",
        role=CLINICIAN_ROLE,
        action=FLAG_ACTIONS.get(outcome, f"flag.{outcome}"),
        subject_kind="flag",
        subject_id=flag.id,
        practice_ods=flag.practice_ods,
        patient_id=flag.patient_id,
        detail={"source": str(source)},
        clock=clock,
    )


def consent_withdrawn(
    session: Session, consent_id: str, practice: str, patient: str, by: str | None, clock: Clock
) -> None:
    """A patient's consent was withdrawn (recorded by a clinician)."""
    record_audit(
        session,
        actor=by or "unknown",
        role=CLINICIAN_ROLE,
        action="consent.withdrawn",
        subject_kind="consent",
        subject_id=consent_id,
        practice_ods=practice,
        patient_id=patient,
        clock=clock,
    )


def disclosure(
    session: Session,
    referral_id: str,
    referral: Referral | None,
    service_id: str,
    via: str,
    clock: Clock,
) -> None:
    """A referral left the practice: the minimum dataset reached a housing service."""
    record_audit_many(session, [disclosure_event(referral_id, referral, service_id, via)], clock)


def disclosure_event(
    referral_id: str, referral: Referral | None, service_id: str, via: str
) -> AuditEvent:
    """The entry :func:`disclosure` appends, for callers recording a batch at once."""
    return AuditEvent(
        actor=SYSTEM.user,
        role=SYSTEM.role,
        action="referral.disclosed",
        subject_kind="referral",
        subject_id=referral_id,
        practice_ods=referral.practice_ods if referral else None,
        patient_id=referral.patient_id if referral else None,
        detail={"service": service_id, "via": via},
    )


def operator_action(
    session: Session,
    action: str,
    referral: Referral | None,
    referral_id: str,
    by: Actor,
    clock: Clock,
) -> None:
    """An operator retried or cancelled a referral's delivery."""
    record_audit(
        session,
        actor=by.user,
        role=by.role,
        action=action,
        subject_kind="referral",
        subject_id=referral_id,
        practice_ods=referral.practice_ods if referral else None,
        patient_id=referral.patient_id if referral else None,
        clock=clock,
    )


def housing_action(
    session: Session,
    kind: str,
    referral_id: str,
    team_id: str,
    sender_referral: str,
    by: Actor,
    when: datetime,
) -> None:
    """A housing officer acted on a received referral (accept, decline, contact, outcome)."""
    record_audit(
        session,
        actor=by.user,
        role=by.role,
        action=f"housing.{kind}",
        subject_kind="housing_referral",
        subject_id=referral_id,
        practice_ods=None,
        detail={"team": team_id, "referral": sender_referral},
        clock=at(when),
    )


def capacity_changed(
    session: Session, team_id: str, per_week: int | None, by: Actor, clock: Clock
) -> None:
    """A housing manager changed how many referrals a week the team takes."""
    record_audit(
        session,
        actor=by.user,
        role=by.role,
        action="housing.capacity",
        subject_kind="housing_team",
        subject_id=team_id,
        practice_ods=None,
        detail={"per_week": per_week},
        clock=clock,
    )


def signed_in(session: Session, user_id: str, role: str, organisation: str, clock: Clock) -> None:
    """Someone signed in to a page (a practice's or a housing team's)."""
    record_audit(
        session,
        actor=user_id,
        role=role,
        action="user.signed-in",
        subject_kind="user",
        subject_id=user_id,
        practice_ods=None,
        detail={"organisation": organisation},
        clock=clock,
    )


def signed_out(session: Session, user_id: str, role: str, clock: Clock) -> None:
    """Someone signed out of a page."""
    record_audit(
        session,
        actor=user_id,
        role=role,
        action="user.signed-out",
        subject_kind="user",
        subject_id=user_id,
        practice_ods=None,
        clock=clock,
    )


def sign_in_failed(
    session: Session, user_id: str | None, role: str | None, username: str, clock: Clock
) -> None:
    """A sign-in was refused: the account's id if it exists, else the name's keyed hash.

    Never the typed text itself: whatever an attacker types must not reach the log.
    """
    hashed = "unknown:" + keyed_hash(SIGN_IN_PURPOSE, username.lower())
    who = user_id if user_id is not None else hashed
    record_audit(
        session,
        actor=who,
        role=role or "unknown",
        action="user.sign-in-failed",
        subject_kind="user",
        subject_id=who,
        practice_ods=None,
        clock=clock,
    )
