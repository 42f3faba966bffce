"""Recording the funnel's facts where they happen, in the caller's transaction.

Called from the flag, delivery, forwarding, closed-loop and sync code; kept here so
those modules need one line each and the report's definitions live in one package.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from healthy_homes.store.models import FlagRecord, Referral, RegisterMembership
from healthy_homes.store.reporting_models import (
    ANY_REGISTER,
    FlagRegister,
    ReferralStatusEvent,
    RegisterCount,
)


def month_of(when: datetime) -> str:
    """The report month (UTC) a moment falls in, as ``YYYY-MM``."""
    return f"{when.year:04d}-{when.month:02d}"


def record_flag_registers(session: Session, flag: FlagRecord) -> None:
    """Which registers the flag was raised for (after the flag row is flushed)."""
    for name in dict.fromkeys(flag.registers):
        session.add(
            FlagRegister(flag_id=flag.id, register_name=name, practice_ods=flag.practice_ods)
        )


def record_status_event(session: Session, referral: Referral, status: str, at: datetime) -> None:
    """A housing Task status the referral took, as we learnt it."""
    session.add(
        ReferralStatusEvent(
            referral_id=referral.id, practice_ods=referral.practice_ods, status=status, at=at
        )
    )


def set_remote_status(
    session: Session, referral: Referral, status: str | None, at: datetime
) -> bool:
    """Store the referral's remote Task status, and its history when it moved; True if so.

    Every path that learns a remote status (delivery receipt, direct send, poll, response
    message, inbox) calls this, so the report's history holds each move exactly once.
    None or "" (the source gave no status) leaves the stored one.
    """
    if not status or referral.task_status == status:
        return False
    referral.task_status = status
    session.add(referral)
    record_status_event(session, referral, status, at)
    return True


def record_register_counts(session: Session, practice: str, now: datetime) -> dict[str, int]:
    """This month's register sizes at a practice (the last count in a month stands)."""
    active = (RegisterMembership.practice_ods == practice, col(RegisterMembership.active))
    counts: dict[str, int] = dict(
        session.exec(
            select(RegisterMembership.register_name, func.count())
            .where(*active)
            .group_by(col(RegisterMembership.register_name))
        ).all()
    )
    counts[ANY_REGISTER] = session.exec(
        select(func.count(func.distinct(RegisterMembership.patient_id))).where(*active)
    ).one()
    month = month_of(now)
    existing = {
        row.register_name: row
        for row in session.exec(
            select(RegisterCount).where(
                RegisterCount.practice_ods == practice, RegisterCount.month == month
            )
        )
    }
    for name, patients in counts.items():
        row = existing.pop(name, None) or RegisterCount(
            practice_ods=practice, register_name=name, month=month, counted_at=now
        )
        row.patients, row.counted_at = patients, now
        session.add(row)
    for gone in existing.values():  # a register emptied since the month's earlier count
        gone.patients, gone.counted_at = 0, now
        session.add(gone)
    return counts
