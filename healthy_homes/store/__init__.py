"""Persistence: SQLModel tables, sessions and Alembic migrations.

``Database`` is re-exported lazily: importing any ``healthy_homes.store`` module (the
models, say) must not bring in Alembic, which only opening a database needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from healthy_homes.store.db import Database

__all__ = ["Database"]


def __getattr__(name: str) -> object:
    if name == "Database":
        from healthy_homes.store.db import Database

        return Database
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
