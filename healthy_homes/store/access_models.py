"""Tables for access control (migration 0009): people, their sessions, failed sign-ins.

One user table for every app: a user has one role and belongs to one organisation, a
practice (ODS code) for clinicians and practice admins or a housing team (its id) for
housing officers and managers. It replaced the inbox's own ``housing_user`` and
``housing_session`` tables, whose rows 0009 moved here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from healthy_homes.store.types import UTCDateTime


def _uuid() -> str:
    return str(uuid.uuid4())


def _ts(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


class UserAccount(SQLModel, table=True):
    """Someone who signs in: a role within one organisation."""

    __tablename__ = "user_account"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    username: str = Field(unique=True, max_length=120)
    display_name: str = Field(max_length=120)
    role: str = Field(max_length=20, description="clinician, practice_admin, housing_...")
    organisation: str = Field(index=True, max_length=40, description="ODS code or team id")
    practitioner: str | None = Field(
        default=None, max_length=120, description="a clinician's Practitioner/ID, if known"
    )
    password_hash: str = Field(max_length=300, description="scrypt, self-describing")
    disabled: bool = False
    created_at: datetime = _ts(nullable=False)
    password_changed_at: datetime = _ts(nullable=False)


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256."""

    __tablename__ = "user_session"

    id: str = Field(primary_key=True, max_length=64, description="SHA-256 of the cookie")
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    created_at: datetime = _ts(nullable=False)
    last_seen_at: datetime = _ts(nullable=False)


class SignInFailure(SQLModel, table=True):
    """One refused sign-in, counted per username and per client address for lock-outs."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, description="'user:NAME' or 'address:IP'")
    at: datetime = _ts(nullable=False)
