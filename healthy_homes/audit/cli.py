"""``healthy-homes audit``: verify the chain, export it for an IG review."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings

if TYPE_CHECKING:
    from healthy_homes.audit.export import ExportFormat
    from healthy_homes.audit.verify import VerifyResult
    from healthy_homes.store.db import Database

# The audit, crypto and store modules are imported by the handlers: every command's
# parser is built from this module.


def _open(args: argparse.Namespace) -> Database:
    from healthy_homes.crypto import keyring_from_config, set_keyring
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    set_keyring(keyring_from_config(settings.security))
    return Database(settings.storage.url)


def _report(result: VerifyResult, where: str) -> int:
    if result.ok:
        print(
            f"audit log intact ({where}): {result.entries} entries; "
            f"head {result.entries}:{result.last_mac or '-'}"
        )
        return 0
    print(
        f"audit log FAILED ({where}) at entry {result.first_bad}: {result.problem}",
        file=sys.stderr,
    )
    return 1


def _verify(args: argparse.Namespace) -> int:
    from healthy_homes.audit.export import read_export
    from healthy_homes.audit.verify import verify_entries, verify_log
    from healthy_homes.crypto import keyring_from_config, set_keyring

    if args.file is not None:
        settings = resolve_settings(args.config)
        set_keyring(keyring_from_config(settings.security))
        fmt: ExportFormat = "csv" if args.file.suffix == ".csv" else "jsonl"
        with args.file.open(encoding="utf-8", newline="") as source:
            return _report(verify_entries(read_export(source, fmt)), str(args.file))
    db = _open(args)
    try:
        with db.session() as session:
            result = verify_log(session)
        if result.ok and args.expect:
            result = _expect(db, args.expect, result)
        return _report(result, "database")
    finally:
        db.dispose()


def _expect(db: Database, expected: str, result: VerifyResult) -> VerifyResult:
    """An earlier head noted elsewhere must still be in the chain (catches a rollback)."""
    from healthy_homes.audit.verify import VerifyResult, iter_entries

    seq_text, _, mac = expected.partition(":")
    seq = int(seq_text)
    with db.session() as session:
        found = next(iter_entries(session, upto=seq, after=seq - 1), None)
    if found is None or found["mac"] != mac:
        return VerifyResult(result.entries, result.last_mac, seq, "noted head not in the log")
    return result


def _export(args: argparse.Namespace) -> int:
    from healthy_homes.audit.export import write_export
    from healthy_homes.audit.verify import iter_entries

    db = _open(args)
    try:
        with db.session() as session:
            if args.out is None:
                count = write_export(iter_entries(session), sys.stdout, args.format)
            else:
                with args.out.open("w", encoding="utf-8", newline="") as out:
                    count = write_export(iter_entries(session), out, args.format)
        print(f"{count} audit entries exported", file=sys.stderr)
        return 0
    finally:
        db.dispose()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``audit`` command."""
    audit = subparsers.add_parser(
        "audit",
        help="audit log: verify the hash chain, export it for an IG review",
        description=(
            "Every disclosure (a referral sent) and every human action (consent, flag and "
            "housing decisions, operator retries) is in an append-only, hash-chained log."
        ),
    )
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = sub.add_parser(
        "verify",
        help="check every entry and the head; exit 1 naming the first bad entry",
    )
    add_config_argument(verify)
    verify.add_argument(
        "--file", type=Path, default=None, help="check an export (.csv or .jsonl) instead"
    )
    verify.add_argument(
        "--expect",
        metavar="SEQ:MAC",
        default=None,
        help="a head printed by an earlier verify, which must still be in the log",
    )
    verify.set_defaults(handler=_verify)
    export = sub.add_parser("export", help="write every entry as CSV or JSON Lines")
    add_config_argument(export)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--out", type=Path, default=None, help="file (default: standard output)")
    export.set_defaults(handler=_export)
