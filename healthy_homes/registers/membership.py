"""Register membership in the store: upserts from a full read, and queries."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.store.db import Database
from healthy_homes.store.models import RegisterMembership

Members = dict[str, tuple[date | None, list[str]]]


def store_snapshot(
    db: Database, practice: str, register: str, members: Members, clock: Clock
) -> int:
    """Upsert the members of a full read and deactivate those no longer present; returns leavers."""
    now = clock.now()
    left = 0
    with db.session() as session:
        existing = {
            m.patient_id: m
            for m in session.exec(
                select(RegisterMembership).where(
                    RegisterMembership.practice_ods == practice,
                    RegisterMembership.register_name == register,
                )
            )
        }
        for patient_id, (since, condition_ids) in members.items():
            row = existing.pop(patient_id, None)
            if row is None:
                row = RegisterMembership(
                    practice_ods=practice,
                    register_name=register,
                    patient_id=patient_id,
                    updated_at=now,
                )
            row.since, row.condition_ids, row.active, row.updated_at = (
                since,
                condition_ids,
                True,
                now,
            )
            session.add(row)
        for row in existing.values():
            if row.active:
                row.active, row.updated_at = False, now
                session.add(row)
                left += 1
    return left


def active_members(db: Database, practice: str) -> dict[str, list[RegisterMembership]]:
    """Active register memberships of a practice, grouped by patient id."""
    grouped: dict[str, list[RegisterMembership]] = {}
    with db.session() as session:
        rows = session.exec(
            select(RegisterMembership)
            .where(RegisterMembership.practice_ods == practice, col(RegisterMembership.active))
            .order_by(col(RegisterMembership.patient_id))
        )
        for row in rows:
            grouped.setdefault(row.patient_id, []).append(row)
    return grouped
