"""Server-side sessions in the database, and the account store the web layer asks.

The cookie holds a random token; the table only its SHA-256, so a copy of the
database cannot be replayed as a session. A session ends after ``idle`` without a
request or ``absolute`` after sign-in, whichever comes first, by the injectable clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session

from healthy_homes.accounts import throttle, users
from healthy_homes.accounts.passwords import dummy_hash, verify_password
from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock
from healthy_homes.config.access import AccessConfig
from healthy_homes.store.access_models import UserAccount, UserSession
from healthy_homes.store.db import Database
from healthy_homes.web.access import AccessControl, Principal, Role
from healthy_homes.web.identity import ProxyHeaderIdentity

#: ``last_seen_at`` is written at most this often, not on every request.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives (without use, and at most) and when sign-in pauses."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=10)
    limits: throttle.SignInLimits = field(default_factory=throttle.SignInLimits)

    @classmethod
    def from_config(cls, config: AccessConfig) -> SessionPolicy:
        """The policy a deployment's ``[access]`` section sets."""
        return cls(
            idle=timedelta(minutes=config.idle_minutes),
            absolute=timedelta(hours=config.absolute_hours),
            limits=throttle.SignInLimits(
                per_username=config.username_failures,
                per_address=config.address_failures,
                window=timedelta(minutes=config.lockout_window_minutes),
            ),
        )


def _principal(user: UserAccount) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        organisation=user.organisation,
        practitioner=user.practitioner,
    )


@dataclass
class DatabaseAccounts:
    """The account store (``healthy_homes.web.access.AccountStore``) over our database."""

    db: Database
    clock: Clock
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    limits: throttle.SignInLimits = field(default_factory=throttle.SignInLimits)

    def sign_in(self, username: str, password: str, address: str) -> str | None:
        """A new session token if the password is right and sign-in is not paused."""
        now = self.clock.now()
        with self.db.session() as session:
            if throttle.locked(session, self.limits, username, address, now):
                return None
            user = users.find(session, username)
            # An unknown name costs the same scrypt work, so timing reveals nothing.
            stored = user.password_hash if user is not None else dummy_hash()
            good = verify_password(password, stored) and user is not None and not user.disabled
            if not good or user is None:
                throttle.record_failure(session, self.limits, username, address, now)
                # Only counted failures: once paused, attempts add nothing to the log.
                audit_events.sign_in_failed(
                    session,
                    user.id if user is not None else None,
                    user.role if user is not None else None,
                    username,
                    self.clock,
                )
                return None
            throttle.clear_username(session, username)
            token = secrets.token_urlsafe(32)
            row = UserSession(
                id=users.token_hash(token), user_id=user.id, created_at=now, last_seen_at=now
            )
            session.add(row)
            audit_events.signed_in(session, user.id, user.role, user.organisation, self.clock)
            return token

    def _live(self, session: Session, row: UserSession) -> UserAccount | None:
        now = self.clock.now()
        expired = (
            now - row.last_seen_at >= self.policy.idle
            or now - row.created_at >= self.policy.absolute
        )
        user = session.get(UserAccount, row.user_id)
        if expired or user is None or user.disabled:
            session.delete(row)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
            session.add(row)
        return user

    def principal(self, token: str) -> Principal | None:
        """The session's user if the session is live; an expired one is deleted."""
        with self.db.session() as session:
            row = session.get(UserSession, users.token_hash(token))
            user = self._live(session, row) if row is not None else None
            return _principal(user) if user is not None else None

    def principal_named(self, username: str) -> Principal | None:
        """An enabled user by name (a trusted proxy signed them in)."""
        with self.db.session() as session:
            user = users.find(session, username)
            return _principal(user) if user is not None and not user.disabled else None

    def sign_out(self, token: str) -> None:
        """Forget the session."""
        with self.db.session() as session:
            row = session.get(UserSession, users.token_hash(token))
            if row is not None:
                session.delete(row)
                user = session.get(UserAccount, row.user_id)
                role = user.role if user is not None else "unknown"
                audit_events.signed_out(session, row.user_id, role, self.clock)


def access_control(
    db: Database,
    clock: Clock,
    *,
    app_name: str,
    roles: Iterable[Role],
    organisation: str | None = None,
    home: str = "/",
    secure_cookies: bool = False,
    session_policy: SessionPolicy | None = None,
    trusted_proxy: ProxyHeaderIdentity | None = None,
) -> AccessControl:
    """An app's access control over this database's accounts and sessions."""
    policy = session_policy or SessionPolicy()
    return AccessControl(
        DatabaseAccounts(db, clock, policy, policy.limits),
        clock,
        app_name=app_name,
        organisation=organisation,
        secure_cookies=secure_cookies,
        trusted_proxy=trusted_proxy,
        home=home,
        roles=frozenset(roles),
    )
