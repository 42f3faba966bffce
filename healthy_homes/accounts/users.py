"""Adding, listing, disabling users and setting their passwords.

A user's organisation must fit their role: a practice ODS code for clinicians and
practice admins, an existing housing team for housing officers and managers. Disabling
a user or changing their password ends every session they have.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlmodel import Session, col, delete, select

from healthy_homes.accounts.passwords import hash_password
from healthy_homes.errors import AccessError
from healthy_homes.store.access_models import UserAccount, UserSession
from healthy_homes.store.models import HousingTeam
from healthy_homes.web.access import HOUSING_ROLES, Role

MIN_PASSWORD = 12
MAX_PASSWORD = 200
_ODS = re.compile(r"^[A-Z0-9]{3,10}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,119}$")


def token_hash(token: str) -> str:
    """What is stored for a session cookie: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(value: str) -> Role:
    """A role from its name ('housing-officer' and 'housing_officer' both work)."""
    try:
        return Role(value.strip().lower().replace("-", "_"))
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise AccessError(f"unknown role {value!r}; one of {names}") from None


def check_password_rules(password: str) -> None:
    """Long enough (and not absurdly long)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccessError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _check_organisation(session: Session, role: Role, organisation: str) -> None:
    if role in HOUSING_ROLES:
        if session.get(HousingTeam, organisation) is None:
            raise AccessError(f"no housing team {organisation!r}; add it first")
    elif not _ODS.match(organisation):
        raise AccessError(f"{organisation!r} is not a practice ODS code")


def find(session: Session, username: str) -> UserAccount | None:
    """The user with this name."""
    return session.exec(select(UserAccount).where(UserAccount.username == username)).first()


def _require(session: Session, username: str) -> UserAccount:
    user = find(session, username)
    if user is None:
        raise AccessError(f"no user {username!r}")
    return user


def add_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    organisation: str,
    password: str,
    now: datetime,
    practitioner: str | None = None,
) -> UserAccount:
    """A new user (the name must be free)."""
    if not _USERNAME.match(username):
        raise AccessError("a username is 2-120 letters, digits and . _ @ -")
    if find(session, username) is not None:
        raise AccessError(f"user {username!r} already exists")
    _check_organisation(session, role, organisation)
    check_password_rules(password)
    if practitioner and not practitioner.startswith("Practitioner/"):
        practitioner = f"Practitioner/{practitioner}"
    user = UserAccount(
        username=username,
        display_name=" ".join(display_name.split())[:120] or username,
        role=role.value,
        organisation=organisation,
        practitioner=practitioner or None,
        password_hash=hash_password(password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    return user


def end_sessions(session: Session, user_id: str) -> None:
    """Sign the user out everywhere."""
    session.exec(delete(UserSession).where(col(UserSession.user_id) == user_id))


def set_password(session: Session, username: str, password: str, now: datetime) -> UserAccount:
    """A new password; every session of the user ends."""
    check_password_rules(password)
    user = _require(session, username)
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    session.add(user)
    end_sessions(session, user.id)
    return user


def set_disabled(session: Session, username: str, disabled: bool = True) -> UserAccount:
    """Disable (or re-enable) a user; disabling ends every session."""
    user = _require(session, username)
    user.disabled = disabled
    session.add(user)
    if disabled:
        end_sessions(session, user.id)
    return user


def list_users(session: Session, organisation: str | None = None) -> list[UserAccount]:
    """Users, by organisation then name."""
    query = select(UserAccount).order_by(col(UserAccount.organisation), col(UserAccount.username))
    if organisation is not None:
        query = query.where(UserAccount.organisation == organisation)
    return list(session.exec(query).all())
