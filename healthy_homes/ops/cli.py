"""``healthy-homes status``: a one-screen summary of the deployment."""

from __future__ import annotations

import argparse

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings


def _status(args: argparse.Namespace) -> int:
    # Imported here: every command's parser is built from this module.
    from healthy_homes.ops.status import gather, render
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        print(render(gather(settings, db, SystemClock())))
    finally:
        db.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` command."""
    parser = subparsers.add_parser(
        "status",
        help="one-screen summary: practices, outbox, alerts, today's flags",
        description="Each practice's last sync and how it ended, the referral outbox (waiting, "
        "oldest, dead letters), open alerts and today's flags, read from the store. Works "
        "while 'healthy-homes serve' runs, on any of its hosts.",
    )
    add_config_argument(parser)
    parser.set_defaults(handler=_status)
