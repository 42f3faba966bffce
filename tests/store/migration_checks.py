"""What every migration test checks: the models agree, and down to N-1 and up again."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import healthy_homes.store.models  # noqa: F401  (registers every table in the metadata)
from healthy_homes.store.db import Database, alembic_config, upgrade


def drift(db: Database, mentions: Iterable[str] | Callable[[Any], bool]) -> list[Any]:
    """Where the migrated schema and the models differ, in what ``mentions`` picks.

    Only the migration's own names count: another team's tables may be mid-change in
    the tree. ``mentions``: names (a difference naming any of them), or a predicate.
    """
    if callable(mentions):
        picks = mentions
    else:
        names = tuple(mentions)

        def picks(change: Any) -> bool:
            return any(f"'{name}'" in repr(change) for name in names)

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    return [change for change in diff if picks(change)]


def table_names(db: Database) -> set[str]:
    """The tables in the database now."""
    return set(inspect(db.engine).get_table_names())


def column_names(db: Database, table: str) -> set[str]:
    """The columns of ``table`` now."""
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def round_trip(
    db: Database,
    previous: str,
    *,
    tables: Iterable[str] = (),
    columns: Mapping[str, Iterable[str]] | None = None,
    between: Callable[[], None] | None = None,
) -> None:
    """Head has the migration's tables and columns; ``previous`` has none; head again has all.

    ``between`` runs at ``previous`` (seeding rows the upgrade must carry, say). Last, the
    models and the migrated schema must agree on those tables and columns.
    """
    tables = set(tables)
    columns = {table: set(names) for table, names in (columns or {}).items()}

    def present() -> bool:
        found = table_names(db)
        return tables <= found and all(
            table in found and names <= column_names(db, table) for table, names in columns.items()
        )

    def absent() -> bool:
        found = table_names(db)
        return not tables & found and all(
            table not in found or not names & column_names(db, table)
            for table, names in columns.items()
        )

    assert present()
    command.downgrade(alembic_config(db.engine), previous)
    assert absent()
    if between is not None:
        between()
    upgrade(db.engine)
    assert present()

    def ours(change: Any) -> bool:
        text = repr(change)
        return any(f"'{t}'" in text for t in tables) or any(
            f"'{t}'" in text and any(f"'{c}'" in text for c in names)
            for t, names in columns.items()
        )

    assert drift(db, ours) == []
