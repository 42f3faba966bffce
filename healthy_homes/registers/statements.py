"""Core statements compiled once per shape: bulk upserts and lookups by a list of values.

A register read writes and looks up thousands of rows. Built and compiled by
SQLAlchemy for every call, the statements cost more CPU than the database's own work
(an ``IN`` of 500 values is rendered value by value), so each shape is compiled once
per dialect and run through the driver directly.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlmodel import Session

T = TypeVar("T")
# Bound parameters per statement stay far below SQLite's and PostgreSQL's limits.
CHUNK = 500
#: Lookups pad their list of values up to one of these sizes (a repeated value changes
#: nothing in an IN), so a handful of compiled statements serve every batch.
_LOOKUP_SIZES = (1, 4, 16, 64, 128, 256, 512)


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
    processors = tuple(_bind_processor(table, name, dialect) for name in names)
    return _Upsert(compiled.string, names, compiled.positional, processors)


def _bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's own bind processor, but orjson for JSON the dialect would json.dumps.

    The same JSON (compact), a few times faster: a register's membership rows each
    carry a list of condition ids.
    """
    column_type = table.c[name].type
    impl = column_type.dialect_impl(dialect)
    process = impl.bind_processor(dialect)
    if process is None:
        return None
    if isinstance(column_type, JSON) and getattr(dialect, "_json_serializer", None) is None:
        return _json_text
    if isinstance(impl, sqlite.DATE) and getattr(impl, "_storage_format", None) == _SQLITE_DATE:
        return functools.partial(_iso_date, process)
    return process


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


#: SQLite's default text form of a date: what ``date.isoformat`` writes, in C.
_SQLITE_DATE = "%(year)04d-%(month)02d-%(day)02d"


def _iso_date(process: Callable[[Any], Any], value: Any) -> Any:
    return value.isoformat() if type(value) is date else process(value)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE on SQLite and PostgreSQL; rows share keys."""
    if not rows:
        return
    names = tuple(rows[0])
    row_values = operator.itemgetter(*names)
    upsert_rows(session, table, names, [row_values(row) for row in rows], keys, update)


def upsert_rows(
    session: Session,
    table: Table,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """:func:`upsert` of rows given as value tuples in the order of ``names``.

    Compiled once per statement shape and handed to the driver's ``executemany`` with
    the column types' own bind processors applied here: SQLAlchemy's per-row parameter
    handling cost more than SQLite's work on a register read's few thousand rows.
    A value repeated down the rows (the read's timestamp, common dates) is converted once.
    """
    if not rows:
        return
    if len(names) < 2:
        raise ValueError("an upsert writes keys and at least one more column")
    bind = session.connection()
    plan = _compiled_upsert(bind.dialect, table, tuple(names), tuple(keys), tuple(update))
    where = [names.index(name) for name in plan.names]
    for batch in chunks(rows, CHUNK * 4):
        # Column by column: each column's distinct values go through its processor once.
        given = list(zip(*batch, strict=True))
        columns = [
            given[i] if process is None else _converted(given[i], process)
            for i, process in zip(where, plan.processors, strict=True)
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


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled for one dialect, and the order its parameters go in."""

    sql: str
    names: tuple[str, ...]
    positional: bool

    def params(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for these bound values."""
        if self.positional:
            return tuple(values[name] for name in self.names)
        return dict(values)


@functools.lru_cache(maxsize=256)
def _compiled_lookup(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...] | None,
    equal: tuple[str, ...],
    among: str | None,
    size: int,
) -> _Compiled:
    """``SELECT columns`` (or ``DELETE`` when None) ``WHERE equal... AND among IN (size)``."""
    where = [table.c[name] == bindparam(f"eq_{name}") for name in equal]
    if among is not None:
        where.append(table.c[among].in_([bindparam(f"in_{i}") for i in range(size)]))
    stmt: Any = (
        delete(table).where(*where)
        if columns is None
        else select(*(table.c[name] for name in columns)).where(*where)
    )
    compiled = stmt.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ()) if compiled.positional else ()
    return _Compiled(compiled.string, names, compiled.positional)


def _lookup_batches(
    session: Session,
    table: Table,
    columns: tuple[str, ...] | None,
    equal: Mapping[str, Any],
    among: str,
    values: Iterable[Any],
) -> Iterator[Any]:
    """Run the lookup for each batch of ``values``; yield each batch's driver result."""
    bind = session.connection()
    for batch in chunks(values, _LOOKUP_SIZES[-1]):
        size = next(n for n in _LOOKUP_SIZES if n >= len(batch))
        plan = _compiled_lookup(bind.dialect, table, columns, tuple(equal), among, size)
        bound = {f"eq_{name}": value for name, value in equal.items()}
        padded = batch + [batch[-1]] * (size - len(batch))
        bound.update((f"in_{i}", value) for i, value in enumerate(padded))
        yield bind.exec_driver_sql(plan.sql, plan.params(bound))


def select_among(
    session: Session,
    table: Table,
    columns: tuple[str, ...],
    equal: Mapping[str, Any],
    among: str,
    values: Iterable[Any],
) -> list[tuple[Any, ...]]:
    """Rows (as tuples of ``columns``) where ``equal`` holds and ``among`` is in ``values``.

    Raw driver values, without the column types' result processing (a SQLite boolean
    comes back as 0 or 1).
    """
    rows: list[tuple[Any, ...]] = []
    for result in _lookup_batches(session, table, columns, equal, among, values):
        rows += [tuple(row) for row in result]
    return rows


def delete_among(
    session: Session, table: Table, equal: Mapping[str, Any], among: str, values: Iterable[Any]
) -> None:
    """Delete the rows where ``equal`` holds and ``among`` is in ``values``."""
    for result in _lookup_batches(session, table, None, equal, among, values):
        result.close()


def select_where(
    session: Session, table: Table, columns: tuple[str, ...], equal: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Rows (raw driver values, as :func:`select_among`) where ``equal`` holds."""
    bind = session.connection()
    plan = _compiled_lookup(bind.dialect, table, columns, tuple(equal), None, 0)
    bound = {f"eq_{name}": value for name, value in equal.items()}
    return [tuple(row) for row in bind.exec_driver_sql(plan.sql, plan.params(bound))]
