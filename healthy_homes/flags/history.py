"""What the store knows about patients' past offers: the inputs of the suppression rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import or_
from sqlmodel import Session, col, select

from healthy_homes.flags.rules import History, Offer
from healthy_homes.store.models import (
    OPEN_FLAG_STATUSES,
    OUTCOME_FLAG_STATUSES,
    ConsentDecision,
    ConsentRecord,
    FlagRecord,
    Referral,
    ReferralStatus,
)

#: Remote Task states after which a referral is no longer open.
CLOSED_TASK_STATUSES = frozenset(
    {"completed", "rejected", "cancelled", "failed", "entered-in-error"}
)
_OPEN = [s.value for s in OPEN_FLAG_STATUSES]
_OUTCOMES = [s.value for s in OUTCOME_FLAG_STATUSES]


def referral_is_open(referral: Referral) -> bool:
    """Not cancelled here, and not finished at the housing service."""
    if referral.status == ReferralStatus.CANCELLED:
        return False
    return referral.task_status not in CLOSED_TASK_STATUSES


def load_histories(
    session: Session, practice: str, patients: Iterable[str] | None = None
) -> dict[str, History]:
    """Histories of a practice's patients (all, or those named) in three queries."""
    wanted = None if patients is None else sorted(set(patients))
    open_flags: set[str] = set()
    open_referrals: set[str] = set()
    offers: dict[str, list[Offer]] = defaultdict(list)

    flag_query = select(
        FlagRecord.patient_id, FlagRecord.status, FlagRecord.outcome, FlagRecord.outcome_at
    ).where(
        FlagRecord.practice_ods == practice,
        or_(col(FlagRecord.status).in_(_OPEN), col(FlagRecord.outcome).in_(_OUTCOMES)),
    )
    withdrawal_query = select(ConsentRecord.patient_id, ConsentRecord.withdrawn_at).where(
        ConsentRecord.practice_ods == practice,
        ConsentRecord.decision == ConsentDecision.GIVEN,
        col(ConsentRecord.withdrawn_at).is_not(None),
    )
    referral_query = select(Referral).where(
        Referral.practice_ods == practice, Referral.status != ReferralStatus.CANCELLED
    )
    if wanted is not None:
        flag_query = flag_query.where(col(FlagRecord.patient_id).in_(wanted))
        withdrawal_query = withdrawal_query.where(col(ConsentRecord.patient_id).in_(wanted))
        referral_query = referral_query.where(col(Referral.patient_id).in_(wanted))

    for patient_id, status, outcome, outcome_at in session.exec(flag_query):
        if status in _OPEN:
            open_flags.add(patient_id)
        if outcome in _OUTCOMES and outcome_at is not None:
            offers[patient_id].append(Offer(outcome, outcome_at))
    for patient_id, withdrawn_at in session.exec(withdrawal_query):
        if withdrawn_at is not None:
            offers[patient_id].append(Offer("withdrawn", withdrawn_at))
    for referral in session.exec(referral_query):
        if referral_is_open(referral):
            open_referrals.add(referral.patient_id)
    keys = open_flags | open_referrals | set(offers)
    return {
        p: History(
            open_flag=p in open_flags,
            open_referral=p in open_referrals,
            offers=tuple(offers.get(p, ())),
        )
        for p in keys
    }


def history_of(session: Session, practice: str, patient_id: str) -> History:
    """One patient's history."""
    return load_histories(session, practice, [patient_id]).get(patient_id, History())
