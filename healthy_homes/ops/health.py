"""Readiness: the store answers, its schema is at the newest migration, the scheduler runs."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from healthy_homes.store.db import MIGRATIONS, Database, current_revision


@cache
def head_revision() -> str | None:
    """The newest migration this code ships."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def readiness(db: Database, scheduler_running: Callable[[], bool]) -> dict[str, bool]:
    """Each check by name; ready when all are True."""
    checks = {"database": False, "migrations": False, "scheduler": scheduler_running()}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = True
        checks["migrations"] = current_revision(db.engine) == head_revision()
    except SQLAlchemyError:
        # An unreachable database is an answer, not an error: both checks stay False and
        # the probe says "not ready" rather than failing with a 500.
        return checks
    return checks
