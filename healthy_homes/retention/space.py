"""Giving the space of purged rows back: SQLite VACUUM, PostgreSQL VACUUM.

SQLite rewrites the whole file (then the WAL is checkpointed and truncated), so the
file shrinks. PostgreSQL's plain VACUUM marks the space free for reuse and gives empty
pages at the end of a table back to the operating system, without locking out the
connector the way ``VACUUM FULL`` would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from sqlalchemy import text

from healthy_homes.store.db import Database


def database_bytes(db: Database) -> int:
    """Bytes the database takes on disk (SQLite: file plus WAL)."""
    if db.engine.dialect.name == "sqlite":
        path = db.engine.url.database or ""
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    with db.engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return int(size)


def reclaim(db: Database, tables: Iterable[str]) -> tuple[int, int]:
    """VACUUM after a purge; returns the database's size before and after."""
    before = database_bytes(db)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if db.engine.dialect.name == "sqlite":
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            names = [db.engine.dialect.identifier_preparer.quote(t) for t in tables]
            if names:
                conn.execute(text(f"VACUUM (ANALYZE) {', '.join(names)}"))
    return before, database_bytes(db)
