"""Register membership in the store: derived from register conditions, and queried."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from healthy_homes.clock import Clock
from healthy_homes.registers.conditions import statuses
from healthy_homes.registers.rules import Member, Role, membership
from healthy_homes.registers.statements import chunks, table_of, upsert_rows
from healthy_homes.store.db import Database
from healthy_homes.store.models import RegisterCondition, RegisterMembership

Members = dict[str, tuple[date | None, list[str]]]
MEMBERSHIP_COLUMNS = (
    "practice_ods",
    "register_name",
    "patient_id",
    "active",
    "since",
    "condition_ids",
    "updated_at",
)


@dataclass
class MembershipChange:
    """Who joined and who left one register in one step."""

    joined: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)

    def add(self, other: MembershipChange) -> None:
        """Fold another change in."""
        self.joined |= other.joined
        self.left |= other.left


def apply_members(
    session: Session,
    practice: str,
    register: str,
    desired: dict[str, Member],
    scope: Iterable[str] | None,
    now: datetime,
) -> MembershipChange:
    """Make membership match ``desired`` for the patients in ``scope`` (None: everyone).

    Rows are never deleted: a patient who leaves keeps an inactive row, so history
    and flag retirement can see that they were once on the register. Written with
    Core upserts: building ORM objects would cost more than the whole download.
    """
    table = table_of(RegisterMembership)
    query = select(table.c.patient_id, table.c.active, table.c.since, table.c.condition_ids).where(
        table.c.practice_ods == practice, table.c.register_name == register
    )
    existing: dict[str, tuple[bool, date | None, list[str]]] = {}
    if scope is None:
        rows = list(session.execute(query))
        patients: set[str] = {r[0] for r in rows} | set(desired)
    else:
        patients = set(scope)
        rows = []
        for batch in chunks(patients):
            rows += session.execute(query.where(table.c.patient_id.in_(batch))).all()
    existing = {r[0]: (bool(r[1]), r[2], list(r[3] or [])) for r in rows}
    change = MembershipChange()
    writes: list[tuple[object, ...]] = []  # rows in MEMBERSHIP_COLUMNS order
    for patient_id in patients:
        member = desired.get(patient_id)
        old = existing.get(patient_id)
        if member is None:
            if old is not None and old[0]:
                change.left.add(patient_id)
                writes.append((practice, register, patient_id, False, old[1], old[2], now))
            continue
        ids = list(member.condition_ids)
        if old is not None and old == (True, member.since, ids):
            continue
        if old is None or not old[0]:
            change.joined.add(patient_id)
        writes.append((practice, register, patient_id, True, member.since, ids, now))
    upsert_rows(
        session,
        table,
        MEMBERSHIP_COLUMNS,
        writes,
        ("practice_ods", "register_name", "patient_id"),
        ("active", "since", "condition_ids", "updated_at"),
    )
    return change


def recompute(
    session: Session, practice: str, register: str, patients: Iterable[str] | None, now: datetime
) -> MembershipChange:
    """Derive membership from register conditions and patient status, then apply it."""
    table = table_of(RegisterCondition)
    query = select(table.c.patient_id, table.c.condition_id, table.c.role, table.c.noted).where(
        table.c.practice_ods == practice, table.c.register_name == register
    )
    roles: dict[str, list[tuple[str, Role, date | None]]] = {}
    scope = None if patients is None else set(patients)
    batches = [None] if scope is None else list(chunks(scope))
    for batch in batches:
        q = query if batch is None else query.where(table.c.patient_id.in_(batch))
        for patient_id, condition_id, role, noted in session.execute(q):
            roles.setdefault(patient_id, []).append((condition_id, Role(role), noted))
    current = statuses(session, practice, None if scope is None else roles)
    desired: dict[str, Member] = {}
    for patient_id, found in roles.items():
        member = membership(found, current=current.get(patient_id, True))
        if member is not None:
            desired[patient_id] = member
    return apply_members(session, practice, register, desired, scope, now)


def store_snapshot(
    db: Database, practice: str, register: str, members: Members, clock: Clock
) -> int:
    """Make membership equal a full read's members; returns how many left."""
    desired = {p: Member(since, tuple(ids)) for p, (since, ids) in members.items()}
    with db.session() as session:
        change = apply_members(session, practice, register, desired, None, clock.now())
    return len(change.left)


def active_members(db: Database, practice: str) -> dict[str, list[RegisterMembership]]:
    """Active register memberships of a practice, grouped by patient id."""
    grouped: dict[str, list[RegisterMembership]] = {}
    with db.session() as session:
        rows = session.exec(
            orm_select(RegisterMembership)
            .where(RegisterMembership.practice_ods == practice, col(RegisterMembership.active))
            .order_by(col(RegisterMembership.patient_id))
        )
        for row in rows:
            grouped.setdefault(row.patient_id, []).append(row)
    return grouped


def member_ids(session: Session, practice: str) -> set[str]:
    """Patients active on at least one register of the practice."""
    table = table_of(RegisterMembership)
    rows = session.execute(
        select(table.c.patient_id)
        .where(table.c.practice_ods == practice, table.c.active)
        .distinct()
    )
    return set(rows.scalars())


def register_counts(session: Session, practice: str) -> dict[str, int]:
    """Active members per register of a practice."""
    rows = session.exec(
        orm_select(RegisterMembership.register_name, func.count())
        .where(RegisterMembership.practice_ods == practice, col(RegisterMembership.active))
        .group_by(col(RegisterMembership.register_name))
    )
    return {name: count for name, count in rows}


def on_any_register(session: Session, practice: str, patients: Iterable[str]) -> set[str]:
    """Those of ``patients`` still active on at least one register of the practice."""
    found: set[str] = set()
    for batch in chunks(set(patients)):
        found.update(
            session.exec(
                orm_select(RegisterMembership.patient_id).where(
                    RegisterMembership.practice_ods == practice,
                    col(RegisterMembership.active),
                    col(RegisterMembership.patient_id).in_(batch),
                )
            )
        )
    return found


def distinct_members(session: Session, practice: str) -> int:
    """Distinct patients active on at least one register."""
    return session.exec(
        orm_select(func.count(func.distinct(RegisterMembership.patient_id))).where(
            RegisterMembership.practice_ods == practice, col(RegisterMembership.active)
        )
    ).one()
