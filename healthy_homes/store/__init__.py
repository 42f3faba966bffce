"""Persistence: SQLModel tables, sessions and Alembic migrations."""

from healthy_homes.store.db import Database

__all__ = ["Database"]
