"""Facts the funnel report needs that the working tables do not keep (migration 0011).

Which registers a flag was raised for (a flag may name several), every status a
referral's housing Task took and when, and how many patients were on each register in
each month. Ids, names and counts only: nothing here identifies a patient.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from healthy_homes.store.models import ConsentRecord, Referral
from healthy_homes.store.types import UTCDateTime

#: ``RegisterCount.register_name`` of the row counting patients on any register.
ANY_REGISTER = "*"


def _ts(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


class FlagRegister(SQLModel, table=True):
    """One register a flag was raised for, written with the flag."""

    __tablename__ = "flag_register"
    __table_args__ = (Index("ix_flag_register_practice", "practice_ods", "register_name"),)

    flag_id: str = Field(foreign_key="flag.id", primary_key=True, max_length=36)
    register_name: str = Field(primary_key=True, max_length=40)
    practice_ods: str = Field(max_length=10)


class ReferralStatusEvent(SQLModel, table=True):
    """A housing Task status a referral took, when we learnt of it (never patient data)."""

    __tablename__ = "referral_status_event"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    practice_ods: str = Field(max_length=10)
    status: str = Field(max_length=20)
    at: datetime = _ts(nullable=False)


class RegisterCount(SQLModel, table=True):
    """Patients on one register (or on any, ``*``) at a practice: the month's last count."""

    __tablename__ = "register_count"
    __table_args__ = (UniqueConstraint("practice_ods", "register_name", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(max_length=10)
    register_name: str = Field(max_length=40)
    month: str = Field(max_length=7, description="YYYY-MM, UTC")
    patients: int = 0
    counted_at: datetime = _ts(nullable=False)


# The funnel asks, per flag, whether it has a consent and a referral; without these the
# question scans both tables for every flag (SQLite has no semi-join to fall back on).
Index("ix_consent_flag_id", ConsentRecord.__table__.c.flag_id)  # type: ignore[attr-defined]
Index("ix_referral_flag_id", Referral.__table__.c.flag_id)  # type: ignore[attr-defined]
