"""Register conditions and patient status in the store: idempotent upserts by FHIR id.

A page read twice (a retry, a duplicate across pages, an overlap window) writes the
same rows again and changes nothing, which is what makes incremental sync safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from healthy_homes.registers.rules import Classified
from healthy_homes.registers.statements import (
    delete_among,
    select_among,
    select_where,
    table_of,
    upsert_rows,
)
from healthy_homes.store.models import PatientStatus, RegisterCondition

CONDITION_COLUMNS = (
    "practice_ods",
    "register_name",
    "condition_id",
    "patient_id",
    "role",
    "noted",
    "updated_at",
)
STATUS_COLUMNS = ("practice_ods", "patient_id", "current", "updated_at")


def write_conditions(
    session: Session,
    practice: str,
    register: str,
    found: Iterable[Classified],
    now: datetime,
    *,
    previous: bool = True,
) -> set[str]:
    """Store Conditions that play a role; delete the rows of those that no longer do.

    Returns the patients whose rows may have changed; with ``previous`` False (a full
    read, after which everyone is recomputed) a Condition's former subject is not looked up.
    """
    keep: dict[str, tuple[Any, ...]] = {}  # condition id -> its row (CONDITION_COLUMNS)
    drop: dict[str, str] = {}
    for item in found:
        if item.role is None:
            drop[item.condition_id] = item.patient_id
            keep.pop(item.condition_id, None)
        else:
            keep[item.condition_id] = (
                practice,
                register,
                item.condition_id,
                item.patient_id,
                item.role.value,
                item.noted,
                now,
            )
            drop.pop(item.condition_id, None)
    # A Condition moved to another subject changes the old subject's membership too.
    touched = _subjects(session, practice, register, [*keep, *drop]) if previous else set()
    touched |= {row[3] for row in keep.values()} | set(drop.values())
    upsert_rows(
        session,
        table_of(RegisterCondition),
        CONDITION_COLUMNS,
        list(keep.values()),
        ("practice_ods", "register_name", "condition_id"),
        ("patient_id", "role", "noted", "updated_at"),
    )
    if drop:  # their subjects are in touched already
        where = {"practice_ods": practice, "register_name": register}
        delete_among(session, table_of(RegisterCondition), where, "condition_id", drop)
    return touched


def _subjects(session: Session, practice: str, register: str, ids: list[str]) -> set[str]:
    rows = select_among(
        session,
        table_of(RegisterCondition),
        ("patient_id",),
        {"practice_ods": practice, "register_name": register},
        "condition_id",
        ids,
    )
    return {patient for (patient,) in rows}


def delete_conditions(
    session: Session, practice: str, register: str, condition_ids: Iterable[str]
) -> set[str]:
    """Delete rows by condition id; return their patients (a Condition may change subject)."""
    ids = list(condition_ids)
    if not ids:
        return set()
    patients = _subjects(session, practice, register, ids)
    where = {"practice_ods": practice, "register_name": register}
    delete_among(session, table_of(RegisterCondition), where, "condition_id", ids)
    return patients


def delete_unwritten(session: Session, practice: str, register: str, written_at: datetime) -> None:
    """Delete a register's rows not written at ``written_at`` (a complete full read's stale rows).

    Every Condition a full read keeps is written with the read's own timestamp, so the
    rest are the Conditions the server no longer returned: one statement, instead of
    reading every id back to compare.
    """
    table = table_of(RegisterCondition)
    session.execute(
        delete(table).where(
            table.c.practice_ods == practice,
            table.c.register_name == register,
            table.c.updated_at != written_at,
        )
    )


def condition_ids(session: Session, practice: str, register: str) -> dict[str, str]:
    """Condition id -> patient id of every row of a register."""
    where = {"practice_ods": practice, "register_name": register}
    rows = select_where(session, table_of(RegisterCondition), ("condition_id", "patient_id"), where)
    return dict(rows)


def delete_patients(session: Session, practice: str, register: str, patients: set[str]) -> None:
    """Delete every row of these patients on a register (they left its Group)."""
    where = {"practice_ods": practice, "register_name": register}
    delete_among(session, table_of(RegisterCondition), where, "patient_id", patients)


def known_patients(session: Session, practice: str, patients: Iterable[str]) -> set[str]:
    """Those of ``patients`` the practice's register state knows about."""
    wanted = set(patients)
    where = {"practice_ods": practice}
    known: set[str] = set()
    for model in (RegisterCondition, PatientStatus):
        rows = select_among(session, table_of(model), ("patient_id",), where, "patient_id", wanted)
        known.update(patient for (patient,) in rows)
    return known


#: Asked about more patients than this, :func:`statuses` reads every row of the practice.
_READ_ALL_AT = 200


def statuses(session: Session, practice: str, patients: Iterable[str] | None) -> dict[str, bool]:
    """Patient id -> current (alive and registered), for those of the patients with a row.

    A patient without a row is current (see :func:`write_statuses`).
    """
    table = table_of(PatientStatus)
    columns = ("patient_id", "current")
    where = {"practice_ods": practice}
    if patients is None:
        return {p: bool(c) for p, c in select_where(session, table, columns, where)}
    wanted = patients if isinstance(patients, set | dict) else set(patients)
    if len(wanted) > _READ_ALL_AT:
        # Rows are kept only for patients who are not current, a few in a hundred: reading
        # them all costs less than looking hundreds of ids up.
        rows = select_where(session, table, columns, where)
        return {p: bool(c) for p, c in rows if p in wanted}
    rows = select_among(session, table, columns, where, "patient_id", wanted)
    return {p: bool(c) for p, c in rows}


def write_statuses(
    session: Session, practice: str, seen: dict[str, bool], now: datetime
) -> set[str]:
    """Store which patients are not current (alive and registered); return whose changed.

    Only a patient who is not current has a row: no row means current. A practice's
    thousands of register patients, nearly all current, cost no rows and no writes, and
    the store holds no more about them than their register Conditions.
    """
    if not seen:
        return set()
    before = statuses(session, practice, seen)
    changed = {p for p, current in seen.items() if before.get(p, True) != current}
    table = table_of(PatientStatus)
    upsert_rows(
        session,
        table,
        STATUS_COLUMNS,
        [(practice, p, False, now) for p in sorted(changed) if not seen[p]],
        ("practice_ods", "patient_id"),
        ("current", "updated_at"),
    )
    back = [p for p in seen if seen[p] and p in before]  # current again (or an old row)
    if back:
        delete_among(session, table, {"practice_ods": practice}, "patient_id", back)
    return changed
