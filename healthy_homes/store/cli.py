"""``healthy-homes db``: schema upgrades in place."""

from __future__ import annotations

import argparse

from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings


def _upgrade(args: argparse.Namespace) -> int:
    # Imported in the handlers: every command's parser is built from this module, and
    # the store brings SQLAlchemy and Alembic.
    from healthy_homes.store.db import Database, current_revision

    settings = resolve_settings(args.config)
    db = Database.from_settings(settings)
    before = current_revision(db.engine)
    db.upgrade()
    print(f"database upgraded: {before or 'empty'} -> {current_revision(db.engine)}")
    db.dispose()
    return 0


def _current(args: argparse.Namespace) -> int:
    from healthy_homes.store.db import Database, current_revision

    settings = resolve_settings(args.config)
    db = Database.from_settings(settings)
    print(current_revision(db.engine) or "empty (run 'healthy-homes db upgrade')")
    db.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` command."""
    db = subparsers.add_parser(
        "db",
        help="database schema: upgrade in place, show the current revision",
        description="Manage the connector's database schema (Alembic migrations).",
    )
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = sub.add_parser("upgrade", help="apply pending migrations (also run at start)")
    add_config_argument(upgrade)
    upgrade.set_defaults(handler=_upgrade)
    current = sub.add_parser("current", help="print the schema revision")
    add_config_argument(current)
    current.set_defaults(handler=_current)
