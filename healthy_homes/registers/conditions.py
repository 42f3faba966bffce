"""Register conditions and patient status in the store: idempotent upserts by FHIR id.

A page read twice (a retry, a duplicate across pages, an overlap window) writes the
same rows again and changes nothing, which is what makes incremental sync safe.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlmodel import Session, col

from healthy_homes.registers.rules import Classified
from healthy_homes.store.models import PatientStatus, RegisterCondition

T = TypeVar("T")
# Bound parameters per statement stay far below SQLite's and PostgreSQL's limits.
CHUNK = 500


def table_of(model: Any) -> Table:
    """The Core table of a SQLModel class (typed, for Core statements)."""
    found: Table = model.__table__
    return found


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class _Upsert:
    """An upsert compiled once for a dialect, with the bind processors of its columns."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    processors: tuple[Callable[[Any], Any] | None, ...]


@functools.lru_cache(maxsize=64)
def _compiled_upsert(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    update: tuple[str, ...],
) -> _Upsert:
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).inline()  # inline: no RETURNING of generated ids
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
    )
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(columns)
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return _Upsert(compiled.string, names, compiled.positional, processors)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE on SQLite and PostgreSQL; rows share keys.

    Compiled once per statement shape and handed to the driver's ``executemany`` with
    the column types' own bind processors applied here: SQLAlchemy's per-row parameter
    handling cost more than SQLite's work on a register read's few thousand rows.
    A value repeated down the rows (the read's timestamp, common dates) is converted once.
    """
    if not rows:
        return
    bind = session.connection()
    plan = _compiled_upsert(bind.dialect, table, tuple(rows[0]), tuple(keys), tuple(update))
    for batch in chunks(rows, CHUNK * 4):
        # Column by column: each column's distinct values go through its processor once.
        columns = [
            [row[name] for row in batch]
            if process is None
            else _converted([row[name] for row in batch], process)
            for name, process in zip(plan.names, plan.processors, strict=True)
        ]
        params: list[Any] = list(zip(*columns, strict=True))
        if not plan.positional:
            params = [dict(zip(plan.names, values, strict=True)) for values in params]
        bind.exec_driver_sql(plan.sql, params)


def _converted(values: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    """A column's values through its bind processor, each distinct value once if it can."""
    try:
        done = {value: process(value) for value in set(values) if value is not None}
    except TypeError:  # unhashable values (a JSON list): one call each
        return [None if value is None else process(value) for value in values]
    return [None if value is None else done[value] for value in values]


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
    keep: dict[str, dict[str, Any]] = {}
    drop: dict[str, str] = {}
    for item in found:
        if item.role is None:
            drop[item.condition_id] = item.patient_id
            keep.pop(item.condition_id, None)
        else:
            keep[item.condition_id] = {
                "practice_ods": practice,
                "register_name": register,
                "condition_id": item.condition_id,
                "patient_id": item.patient_id,
                "role": item.role.value,
                "noted": item.noted,
                "updated_at": now,
            }
            drop.pop(item.condition_id, None)
    # A Condition moved to another subject changes the old subject's membership too.
    touched = _subjects(session, practice, register, [*keep, *drop]) if previous else set()
    touched |= {row["patient_id"] for row in keep.values()} | set(drop.values())
    upsert(
        session,
        table_of(RegisterCondition),
        list(keep.values()),
        ("practice_ods", "register_name", "condition_id"),
        ("patient_id", "role", "noted", "updated_at"),
    )
    delete_conditions(session, practice, register, drop)
    return touched


def _subjects(session: Session, practice: str, register: str, ids: list[str]) -> set[str]:
    table = table_of(RegisterCondition)
    found: set[str] = set()
    for batch in chunks(ids):
        found.update(
            session.execute(
                select(table.c.patient_id).where(
                    table.c.practice_ods == practice,
                    table.c.register_name == register,
                    table.c.condition_id.in_(batch),
                )
            ).scalars()
        )
    return found


def delete_conditions(
    session: Session, practice: str, register: str, condition_ids: Iterable[str]
) -> set[str]:
    """Delete rows by condition id; return their patients (a Condition may change subject)."""
    patients: set[str] = set()
    table = table_of(RegisterCondition)
    for batch in chunks(condition_ids):
        where = (
            table.c.practice_ods == practice,
            table.c.register_name == register,
            table.c.condition_id.in_(batch),
        )
        patients.update(session.execute(select(table.c.patient_id).where(*where)).scalars())
        session.execute(delete(table).where(*where))
    return patients


def condition_ids(session: Session, practice: str, register: str) -> dict[str, str]:
    """Condition id -> patient id of every row of a register."""
    rows = session.execute(
        select(col(RegisterCondition.condition_id), col(RegisterCondition.patient_id)).where(
            col(RegisterCondition.practice_ods) == practice,
            col(RegisterCondition.register_name) == register,
        )
    )
    return {c: p for c, p in rows}


def delete_patients(session: Session, practice: str, register: str, patients: set[str]) -> None:
    """Delete every row of these patients on a register (they left its Group)."""
    table = table_of(RegisterCondition)
    for batch in chunks(patients):
        session.execute(
            delete(table).where(
                table.c.practice_ods == practice,
                table.c.register_name == register,
                table.c.patient_id.in_(batch),
            )
        )


def known_patients(session: Session, practice: str, patients: Iterable[str]) -> set[str]:
    """Those of ``patients`` the practice's register state knows about."""
    known: set[str] = set()
    for batch in chunks(set(patients)):
        known.update(
            session.execute(
                select(col(RegisterCondition.patient_id)).where(
                    col(RegisterCondition.practice_ods) == practice,
                    col(RegisterCondition.patient_id).in_(batch),
                )
            ).scalars()
        )
        known.update(
            session.execute(
                select(col(PatientStatus.patient_id)).where(
                    col(PatientStatus.practice_ods) == practice,
                    col(PatientStatus.patient_id).in_(batch),
                )
            ).scalars()
        )
    return known


def statuses(session: Session, practice: str, patients: Iterable[str] | None) -> dict[str, bool]:
    """Patient id -> current (alive and registered), for the given patients or all."""
    table = table_of(PatientStatus)
    base = select(table.c.patient_id, table.c.current).where(table.c.practice_ods == practice)
    if patients is None:
        return {p: bool(c) for p, c in session.execute(base)}
    found: dict[str, bool] = {}
    for batch in chunks(set(patients)):
        rows = session.execute(base.where(table.c.patient_id.in_(batch)))
        found.update((p, bool(c)) for p, c in rows)
    return found


def write_statuses(
    session: Session, practice: str, seen: dict[str, bool], now: datetime
) -> set[str]:
    """Store patients' current/not-current status; return those whose status changed."""
    if not seen:
        return set()
    before = statuses(session, practice, seen)
    changed = {p for p, current in seen.items() if before.get(p, True) != current}
    fresh = [p for p in seen if p not in before or before[p] != seen[p]]
    upsert(
        session,
        table_of(PatientStatus),
        [
            {"practice_ods": practice, "patient_id": p, "current": seen[p], "updated_at": now}
            for p in fresh
        ],
        ("practice_ods", "patient_id"),
        ("current", "updated_at"),
    )
    return changed
