"""Recording the funnel's facts where they happen, in the caller's transaction.

Called from the flag, delivery, forwarding, closed-loop and sync code; kept here so
those modules need one line each and the report's definitions live in one package.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from healthy_homes.registers.statements import table_of, upsert_rows
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
    """This month's register sizes at a practice (the last count in a month stands).

    Core statements and one upsert: it runs at the end of every sync of every practice.
    """
    session.flush()  # Core statements do not autoflush: count rows the caller added too
    members = table_of(RegisterMembership)
    active = (members.c.practice_ods == practice, members.c.active)
    counts: dict[str, int] = {
        name: count
        for name, count in session.execute(
            select(members.c.register_name, func.count())
            .where(*active)
            .group_by(members.c.register_name)
        )
    }
    counts[ANY_REGISTER] = session.execute(
        select(func.count(func.distinct(members.c.patient_id))).where(*active)
    ).scalar_one()
    month = month_of(now)
    table = table_of(RegisterCount)
    earlier = session.execute(
        select(table.c.register_name).where(
            table.c.practice_ods == practice, table.c.month == month
        )
    ).scalars()
    # A register emptied since the month's earlier count is counted again, as 0.
    names = sorted(set(counts) | set(earlier))
    upsert_rows(
        session,
        table,
        ("practice_ods", "register_name", "month", "patients", "counted_at"),
        [(practice, name, month, counts.get(name, 0), now) for name in names],
        ("practice_ods", "register_name", "month"),
        ("patients", "counted_at"),
    )
    return counts
