"""Audit log tables (migration 0008): an append-only, hash-chained log and its head anchor.

Entries name the patient only by a keyed pseudonym, never by an NHS number or the
practice's own patient id. Database triggers refuse UPDATE and DELETE on ``audit_log``
and DELETE on ``audit_head``; ``healthy_homes/audit/chain.py`` explains the chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from healthy_homes.store.types import UTCDateTime


class AuditEntry(SQLModel, table=True):
    """One disclosure or human action: who, what, when, which patient (pseudonymous)."""

    __tablename__ = "audit_log"

    seq: int = Field(
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
        description="1, 2, 3... with no gaps; given out under the head row's lock",
    )
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=120, description="user id, or 'system' for the connector")
    role: str = Field(max_length=40)
    action: str = Field(max_length=40, index=True)
    subject_kind: str = Field(max_length=40)
    subject_id: str = Field(max_length=64, index=True, description="e.g. a referral id")
    practice_ods: str | None = Field(default=None, max_length=10, index=True)
    patient: str | None = Field(
        default=None, max_length=64, index=True, description="keyed pseudonym of the patient"
    )
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    prev_mac: str = Field(max_length=64, description="the previous entry's mac")
    mac: str = Field(max_length=64, description="HMAC-SHA256 over the canonical entry")


class AuditHead(SQLModel, table=True):
    """The one head row (id 1): the last sequence number and MAC, itself MACed.

    Appends lock this row, which serialises writers; the verifier compares it with the
    last entry, so entries cut off the end of the log are noticed.
    """

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(default=0, description="entries appended so far")
    mac: str | None = Field(default=None, max_length=64, description="last entry's mac")
    head_mac: str | None = Field(default=None, max_length=64, description="MAC of seq and mac")
    updated_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
