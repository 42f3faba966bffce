"""Deleting rows together with every row that refers to them by foreign key.

The dependents are found from the table metadata, so a table added later with a
foreign key to a referral, consent or flag is purged with it rather than blocking it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table, delete, select
from sqlmodel import Session, SQLModel

import healthy_homes.store.models  # noqa: F401  (every table on the metadata)

#: Rows deleted per table.
Counts = Counter[str]
CHUNK = 500


def _dependents(table: Table) -> list[tuple[Table, Column[Any], Column[Any]]]:
    """(table, its foreign key column, the column of ``table`` it refers to)."""
    found = []
    for other in SQLModel.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is table and fk.parent.table is other:
                found.append((other, fk.parent, fk.column))
    return found


def remove(
    session: Session, table: Table, key: Column[Any], values: Sequence[Any], counts: Counts
) -> None:
    """Delete rows of ``table`` whose ``key`` is in ``values``, dependents first."""
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        for child, fk_column, referred in _dependents(table):
            ids = session.execute(select(referred).where(key.in_(chunk))).scalars().all()
            if ids:
                remove(session, child, fk_column, list(ids), counts)
        deleted = session.execute(delete(table).where(key.in_(chunk)))
        if deleted.rowcount:  # type: ignore[attr-defined]
            counts[table.name] += int(deleted.rowcount)  # type: ignore[attr-defined]
