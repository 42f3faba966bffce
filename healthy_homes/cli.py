"""The ``healthy-homes`` command line: one sub-command area per subpackage.

Each area module exposes ``register(subparsers)``, which adds its parsers and sets
``handler`` (a function taking the parsed arguments and returning an exit code).

Every command builds every area's parsers, so an area module imports at its top only
what those need; its handlers import the rest (the store, web apps, matplotlib), so a
delivery worker or a sync does not start by importing the other commands' dependencies
(``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from healthy_homes import __version__
from healthy_homes.errors import HealthyHomesError
from healthy_homes.logs import configure_logging

# Ordered as they appear in --help.
AREAS = (
    "healthy_homes.config.cli",
    "healthy_homes.store.cli",
    "healthy_homes.connector.cli",
    "healthy_homes.connector.delivery.cli",
    "healthy_homes.ops.cli",
    "healthy_homes.mock_server.cli",
    "healthy_homes.demo.cli",
    "healthy_homes.keys.cli",
    "healthy_homes.web.cli",
    "healthy_homes.flags.cds_hooks.cli",
    "healthy_homes.housing.cli",
    "healthy_homes.reporting.cli",
    "healthy_homes.audit.cli",
    "healthy_homes.retention.cli",
    "healthy_homes.accounts.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every area's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="healthy-homes",
        description=(
            "Healthy Homes connects a GP practice's COPD, asthma, falls and high-risk "
            "registers to a housing service: it flags eligible patients for the clinician, "
            "records consent, and sends consented referrals exactly once."
        ),
        epilog="Run 'healthy-homes COMMAND --help' for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text or one JSON object each (identifiers redacted either way)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in AREAS:
        importlib.import_module(area).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m healthy_homes``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    configure_logging(level, args.log_format)
    try:
        code: int = args.handler(args)
    except HealthyHomesError as exc:
        print(f"healthy-homes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
