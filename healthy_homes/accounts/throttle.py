"""Sign-in lock-out: too many failures for a username, or from an address, pause sign-in.

Failures are rows in ``sign_in_failure`` so every process serving the same database
counts together and a restart forgets nothing. While a key is over its limit within
the window, sign-in is refused without checking the password (the page says the same
generic thing either way). Time comes from the caller's injectable clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, func, select

from healthy_homes.store.access_models import SignInFailure


@dataclass(frozen=True)
class SignInLimits:
    """Failures allowed per username and per client address within ``window``."""

    per_username: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


def _keys(username: str, address: str) -> tuple[str, str]:
    return f"user:{username.lower()[:120]}", f"address:{address[:60]}"


def _count(session: Session, key: str, since: datetime) -> int:
    query = (
        select(func.count())
        .select_from(SignInFailure)
        .where(SignInFailure.key == key)
        .where(col(SignInFailure.at) > since)
    )
    return int(session.exec(query).one())


def locked(
    session: Session, limits: SignInLimits, username: str, address: str, now: datetime
) -> bool:
    """Whether this username or this address has failed too often lately."""
    user_key, address_key = _keys(username, address)
    since = now - limits.window
    return (
        _count(session, user_key, since) >= limits.per_username
        or _count(session, address_key, since) >= limits.per_address
    )


def record_failure(
    session: Session, limits: SignInLimits, username: str, address: str, now: datetime
) -> None:
    """Count a failure against both the username and the address; forget old ones."""
    session.exec(delete(SignInFailure).where(col(SignInFailure.at) <= now - limits.window))
    for key in _keys(username, address):
        session.add(SignInFailure(key=key, at=now))


def clear_username(session: Session, username: str) -> None:
    """A successful sign-in forgets the username's failures (not the address's)."""
    user_key, _ = _keys(username, "")
    session.exec(delete(SignInFailure).where(col(SignInFailure.key) == user_key))
