"""``healthy-homes sync``: run the connector."""

from __future__ import annotations

import argparse
import asyncio

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings
from healthy_homes.connector.run import run_once
from healthy_homes.store.db import Database


def _sync(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.config)
    if not settings.practices:
        print("no [[practices]] configured; nothing to sync")
        return 1
    db = Database(settings.storage.url)
    db.upgrade()
    report = asyncio.run(run_once(settings, db, SystemClock()))
    db.dispose()
    failed = 0
    for run in report.practices:
        if run.error:
            failed += 1
            print(f"{run.practice}: FAILED: {run.error}")
            continue
        assert run.sync is not None and run.flags is not None
        registers = ", ".join(f"{k} {v}" for k, v in run.sync.on_register.items())
        print(
            f"{run.practice}: {run.sync.patients} patients on registers ({registers}); "
            f"{len(run.flags.raised)} new flags"
        )
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sync`` command."""
    sync = subparsers.add_parser(
        "sync",
        help="read each practice's registers and raise flags",
        description="Read every configured practice's registers from its FHIR endpoint, "
        "store membership, and raise flags for eligible patients.",
    )
    add_config_argument(sync)
    sync.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run one pass and exit (scheduled running comes with 'serve')",
    )
    sync.set_defaults(handler=_sync)
