"""Teams, officers and capacity: what the CLI sets up and the endpoints check."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_
from sqlmodel import Session, col, func, select

from healthy_homes.accounts import users
from healthy_homes.audit import Actor
from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock, SystemClock
from healthy_homes.errors import ConfigError
from healthy_homes.store.access_models import UserAccount
from healthy_homes.store.models import HousingReferral, HousingTeam
from healthy_homes.web.access import HOUSING_ROLES, Role

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def token_hash(token: str) -> str:
    """What is stored for a bearer token or session cookie: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_team(session: Session, team_id: str, name: str, now: datetime) -> str:
    """Create a team (or give an existing one a new token); return its bearer token."""
    if not _SLUG.match(team_id):
        raise ConfigError("a team id is lower-case letters, digits and hyphens (max 40)")
    token = secrets.token_urlsafe(32)
    team = session.get(HousingTeam, team_id)
    if team is None:
        team = HousingTeam(id=team_id, name=name, token_hash="", created_at=now)
    team.name = name or team.name
    team.token_hash = token_hash(token)
    session.add(team)
    return token


def add_user(
    session: Session,
    team_id: str,
    username: str,
    display_name: str,
    password: str,
    now: datetime,
    *,
    role: Role = Role.HOUSING_OFFICER,
) -> UserAccount:
    """Add an officer (or manager) to a team, or reset their password and name."""
    if session.get(HousingTeam, team_id) is None:
        raise ConfigError(f"no housing team {team_id!r}; add it first")
    user = users.find(session, username)
    if user is None:
        return users.add_user(
            session,
            username=username,
            display_name=display_name,
            role=role,
            organisation=team_id,
            password=password,
            now=now,
        )
    if user.organisation != team_id or user.role not in HOUSING_ROLES:
        raise ConfigError(f"user {username!r} belongs to another team")
    user.display_name = display_name or user.display_name
    return users.set_password(session, username, password, now)


def set_capacity(
    session: Session,
    team_id: str,
    per_week: int | None,
    overdue_days: int | None = None,
    *,
    by: Actor = audit_events.HOUSING_ADMIN,
    clock: Clock | None = None,
) -> HousingTeam:
    """Set how many new referrals a week the team can take (None: no limit); audited."""
    team = session.get(HousingTeam, team_id)
    if team is None:
        raise ConfigError(f"no housing team {team_id!r}")
    if per_week is not None and per_week < 0:
        raise ConfigError("capacity cannot be negative")
    team.capacity_per_week = per_week
    if overdue_days is not None:
        team.overdue_days = max(1, overdue_days)
    session.add(team)
    audit_events.capacity_changed(session, team_id, per_week, by, clock or SystemClock())
    return team


def team_for_token(session: Session, team_id: str, token: str | None) -> HousingTeam | None:
    """The team, if ``token`` is its bearer token."""
    team = session.get(HousingTeam, team_id)
    if team is None or not token:
        return None
    return team if hmac.compare_digest(team.token_hash, token_hash(token)) else None


def week_start(now: datetime) -> datetime:
    """Monday 00:00 (UTC) of the week ``now`` is in."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Capacity:
    """A team's capacity this week, as ``GET /teams/{team}/capacity`` answers it."""

    team: str
    capacity_per_week: int | None
    received_this_week: int
    accepted_this_week: int
    week_start: datetime
    as_of: datetime

    @property
    def free_places(self) -> int | None:
        """New referrals still wanted this week (None: no limit)."""
        if self.capacity_per_week is None:
            return None
        return max(0, self.capacity_per_week - self.received_this_week)

    def as_json(self) -> dict[str, object]:
        """The wire form."""
        free = self.free_places
        return {
            "team": self.team,
            "capacityPerWeek": self.capacity_per_week,
            "receivedThisWeek": self.received_this_week,
            "acceptedThisWeek": self.accepted_this_week,
            "freePlaces": free,
            "accepting": free is None or free > 0,
            "weekStart": self.week_start.isoformat(),
            "asOf": self.as_of.isoformat(),
        }


def capacity_of(session: Session, team: HousingTeam, now: datetime) -> Capacity:
    """Count this week's arrivals (and those accepted) against the team's setting."""
    start = week_start(now)
    this_week = and_(
        col(HousingReferral.team_id) == team.id, col(HousingReferral.received_at) >= start
    )
    received = session.exec(select(func.count()).select_from(HousingReferral).where(this_week))
    accepted = session.exec(
        select(func.count())
        .select_from(HousingReferral)
        .where(this_week)
        .where(col(HousingReferral.status).in_(("accepted", "in-progress", "completed")))
    )
    return Capacity(
        team=team.id,
        capacity_per_week=team.capacity_per_week,
        received_this_week=int(received.one()),
        accepted_this_week=int(accepted.one()),
        week_start=start,
        as_of=now,
    )
