"""``healthy-homes purge``: apply the retention policy now (or show what it would remove)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings

if TYPE_CHECKING:
    from healthy_homes.retention.purge import PurgeReport


def describe(report: PurgeReport) -> str:
    """The report as lines: one per table, the total, and the space given back."""
    verb = "would remove" if report.dry_run else "removed"
    lines = [f"{name}: {n}" for name, n in sorted(report.counts.items()) if n]
    lines.append(f"{verb} {report.total} row(s)")
    if report.bytes_before is not None and report.bytes_after is not None:
        lines.append(f"database {report.bytes_before} -> {report.bytes_after} bytes")
    return "\n".join(lines)


def _purge(args: argparse.Namespace) -> int:
    # Imported here: every command's parser is built from this module.
    from healthy_homes.crypto import keyring_from_config, set_keyring
    from healthy_homes.retention.purge import purge
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    # The purge writes one audit entry, whose MAC needs the keys.
    set_keyring(keyring_from_config(settings.security))
    db = Database(settings.storage.url)
    try:
        report = purge(db, settings.retention, SystemClock(), dry_run=args.dry_run)
    finally:
        db.dispose()
    print(describe(report))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``purge`` command."""
    parser = subparsers.add_parser(
        "purge",
        help="remove data past its retention period ([retention]); --dry-run only counts",
        description=(
            "Purge the data of patients never referred, referrals past the referral "
            "period and ended housing referrals, then reclaim the space. Audit entries "
            "(pseudonymous) are kept. Runs nightly in 'healthy-homes serve'."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would go, per table; change nothing"
    )
    parser.set_defaults(handler=_purge)
