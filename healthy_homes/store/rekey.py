"""Re-encrypt every encrypted column under the active key and recompute keyed hashes.

Used by ``healthy-homes keys rotate``. Works in batches, one transaction each, walking
each table by primary key; a value already under the active key is left alone, so an
interrupted run is simply run again. Columns are found from the table metadata (every
column whose type is an encrypted one), so tables added later are rotated too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from healthy_homes.crypto import KeyRing
from healthy_homes.errors import StorageError
from healthy_homes.store.lookups import dataset_nhs_number_hash
from healthy_homes.store.models import HousingReferral, Referral
from healthy_homes.store.types import Sealed

#: Tables whose ``nhs_number_hash`` is the keyed hash of their ``dataset``'s NHS number.
HASHED_TABLES = (Referral.__table__, HousingReferral.__table__)  # type: ignore[attr-defined]


def sealed_columns() -> Iterator[tuple[sa.Table, sa.Column[object], bytes]]:
    """Every encrypted column in the metadata, with its table and AAD."""
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Sealed):
                yield table, column, column.type.aad.encode("ascii")


def _primary_key(table: sa.Table) -> sa.Column[object]:
    keys = list(table.primary_key.columns)
    if len(keys) != 1:
        raise StorageError(f"cannot rekey {table.name}: it needs a single-column primary key")
    return keys[0]


def _raw(column: sa.Column[object]) -> sa.ColumnElement[bytes]:
    # Read and write the stored bytes themselves, bypassing the column's own en/decryption.
    return sa.type_coerce(column, sa.LargeBinary())


def _batches(
    engine: Engine, table: sa.Table, columns: Sequence[sa.ColumnElement[Any]], size: int
) -> Iterator[tuple[sa.Connection, list[Any]]]:
    pk = _primary_key(table)
    last: object = None
    while True:
        query = sa.select(pk, *columns).order_by(pk).limit(size)
        if last is not None:
            query = query.where(pk > last)
        with engine.begin() as conn:
            rows = list(conn.execute(query))
            if not rows:
                return
            yield conn, rows
        last = rows[-1][0]


def reencrypt(engine: Engine, ring: KeyRing, *, batch_size: int = 500) -> dict[str, int]:
    """Seal every encrypted value under ``ring``'s active key (reading with any of its keys).

    Returns how many values were re-encrypted per ``table.column``.
    """
    counts: dict[str, int] = {}
    active = ring.active_key_id
    for table, column, aad in sealed_columns():
        pk = _primary_key(table)
        done = 0
        update = (
            table.update()
            .where(pk == sa.bindparam("b_pk"))
            .values({column.name: sa.bindparam("b_value", type_=sa.LargeBinary())})
        )
        for conn, rows in _batches(engine, table, [_raw(column)], batch_size):
            changes = [
                {"b_pk": key, "b_value": ring.encrypt(ring.decrypt(bytes(value), aad=aad), aad=aad)}
                for key, value in rows
                if value is not None and ring.key_id_of(bytes(value)) != active
            ]
            if changes:
                conn.execute(update, changes)
            done += len(changes)
        counts[f"{table.name}.{column.name}"] = done
    return counts


def rehash(engine: Engine, *, batch_size: int = 500) -> dict[str, int]:
    """Recompute every ``nhs_number_hash`` with the process keyring's HMAC key; rows per table."""
    counts: dict[str, int] = {}
    for table in HASHED_TABLES:
        pk = _primary_key(table)
        update = (
            table.update()
            .where(pk == sa.bindparam("b_pk"))
            .values(nhs_number_hash=sa.bindparam("b_hash"))
        )
        done = 0
        for conn, rows in _batches(engine, table, [table.c.dataset], batch_size):
            conn.execute(
                update, [{"b_pk": key, "b_hash": dataset_nhs_number_hash(ds)} for key, ds in rows]
            )
            done += len(rows)
        counts[f"{table.name}.nhs_number_hash"] = done
    return counts


def stale_values(engine: Engine, ring: KeyRing) -> dict[str, int]:
    """Per ``table.column``, how many values are not sealed under ``ring``'s active key."""
    stale: dict[str, int] = {}
    with engine.connect() as conn:
        for table, column, _aad in sealed_columns():
            rows = conn.execute(sa.select(_raw(column)).where(column.is_not(None)))
            active = ring.active_key_id
            count = sum(1 for (value,) in rows if ring.key_id_of(bytes(value)) != active)
            if count:
                stale[f"{table.name}.{column.name}"] = count
    return stale
