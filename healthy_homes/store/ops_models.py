"""Operations tables (migration 0010): practice leases and the last run of each practice job.

A lease is how connector processes on SQLite keep one practice's sync on one worker at a
time (PostgreSQL uses advisory locks instead); the run table is what ``healthy-homes
status`` and the readiness check read, whichever process did the work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from healthy_homes.store.types import UTCDateTime


def _ts(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


class PracticeLease(SQLModel, table=True):
    """Who holds a practice job (``name`` is ``job:ODS``) and until when."""

    __tablename__ = "practice_lease"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=80)
    acquired_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)


class PracticeRunRecord(SQLModel, table=True):
    """The latest run of one kind for one practice: when, by whom, and how it ended."""

    __tablename__ = "practice_run"
    __table_args__ = (UniqueConstraint("practice_ods", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(index=True, max_length=10)
    kind: str = Field(max_length=20)
    outcome: str = Field(max_length=20, description="ok, failed or skipped")
    error: str | None = Field(default=None, max_length=500)
    worker: str = Field(max_length=80)
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime = _ts(nullable=False)
