"""``healthy-homes sync`` (one pass by hand) and ``healthy-homes serve`` (scheduled).

The connector's modules are imported by the handlers, not here: every command's parser
is built from this module, and none but these two needs them.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import TYPE_CHECKING

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings
from healthy_homes.connector.heap import freeze_startup_heap
from healthy_homes.errors import ConfigError

if TYPE_CHECKING:
    from healthy_homes.config.models import Settings
    from healthy_homes.connector.reports import PracticeRun, RunKind
    from healthy_homes.store.db import Database


def _describe(run: PracticeRun) -> str:
    if run.error:
        return f"{run.practice}: FAILED: {run.error}"
    if run.sync is None or run.flags is None:
        return f"{run.practice}: skipped (busy)"
    registers = ", ".join(f"{k} {v}" for k, v in run.sync.on_register.items())
    modes = sorted(set(run.sync.read_mode.values()))
    line = (
        f"{run.practice}: {run.sync.patients} patients on registers ({registers}); "
        f"{len(run.flags.raised)} new flags; read {'/'.join(modes) or 'nothing'}"
    )
    if run.sync.flags_retired:
        line += f"; {run.sync.flags_retired} flags retired"
    if run.appointments is not None:
        line += f"; {run.appointments.watched} register patients booked today or tomorrow"
    return line


def _chosen(settings: Settings, wanted: list[str] | None) -> list[str]:
    known = [p.ods_code for p in settings.practices]
    if not wanted:
        return known
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ConfigError(
            f"--practice {', '.join(unknown)}: not a configured practice; "
            f"expected one of {', '.join(known)}"
        )
    return wanted


def _sync(args: argparse.Namespace) -> int:
    # Imported before the heap is frozen below, so their objects are frozen with it.
    from healthy_homes.connector.progress import progress_display
    from healthy_homes.connector.run import run_once
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    if not settings.practices:
        print("no [[practices]] configured; nothing to sync")
        return 1
    chosen = _chosen(settings, args.practice)
    kind: RunKind = "full" if args.full else "auto"
    db = Database.from_settings(settings)
    db.upgrade()
    freeze_startup_heap()
    try:
        with progress_display(chosen) as hook:
            report = asyncio.run(
                run_once(settings, db, SystemClock(), kind=kind, practices=chosen, progress=hook)
            )
    finally:
        db.dispose()
    for run in report.practices:
        print(_describe(run))
    return 1 if report.failed else 0


async def _serve_until_signal(settings: Settings, db: Database) -> None:
    from healthy_homes.connector.scheduler import serve
    from healthy_homes.connector.service import ConnectorService
    from healthy_homes.ops.endpoint import ops_endpoint

    # Start-up ends with these imports (the migrations ran before): freeze what it made.
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with ConnectorService(settings, db, SystemClock()) as service:
        with ops_endpoint(service) as ops_url:
            print(
                f"serving {len(settings.practices)} practice(s); Ctrl-C or SIGTERM stops",
                flush=True,
            )
            if ops_url:
                print(f"operations endpoint: {ops_url}/healthz /readyz /metrics", flush=True)
            await serve(service, stop, grace=settings.ops.shutdown_grace_seconds)
    print("stopped", flush=True)


def _serve(args: argparse.Namespace) -> int:
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    if not settings.practices:
        print("no [[practices]] configured; nothing to serve")
        return 1
    db = Database.from_settings(settings)
    db.upgrade()
    try:
        asyncio.run(_serve_until_signal(settings, db))
    finally:
        db.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sync`` and ``serve`` commands."""
    sync = subparsers.add_parser(
        "sync",
        help="read each practice's registers and raise flags",
        description="Read every configured practice's registers from its FHIR endpoint, "
        "store membership, raise flags for eligible patients and watch today's and "
        "tomorrow's appointments. Registers read before are read incrementally unless "
        "--full is given.",
    )
    add_config_argument(sync)
    sync.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run one pass and exit (scheduled running is 'healthy-homes serve')",
    )
    sync.add_argument(
        "--full",
        action="store_true",
        help="full reconciliation: read every register in full and drop patients who left",
    )
    sync.add_argument(
        "--practice",
        action="append",
        metavar="ODS",
        help="only this practice (repeatable); default all",
    )
    sync.set_defaults(handler=_sync)
    serve_parser = subparsers.add_parser(
        "serve",
        help="run the connector on its schedule until stopped",
        description="Run every practice on the [sync] schedule: incremental sync every few "
        "minutes, appointment watch every minute, full reconciliation nightly. Stops "
        "gracefully on SIGTERM or Ctrl-C, letting runs in progress finish.",
    )
    add_config_argument(serve_parser)
    serve_parser.set_defaults(handler=_serve)
