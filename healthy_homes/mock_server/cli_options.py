"""``mock-server`` flags for fault injection, loading data, housing timelines and export."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from healthy_homes.errors import ConfigError
from healthy_homes.mock_server.fault_rules import FAULT_SYNTAX, config_from_cli

if TYPE_CHECKING:
    from healthy_homes.mock_server.server import RunningMockServer

_TIMELINE_HELP = (
    "housing mode: move each new Task on a schedule counted from its arrival, e.g. "
    "'received@0s,accepted@30s,in-progress@2m,completed@10m' or 'rejected@1m:REASON' "
    "(units ms, s, m, h, d)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags, with the fault rule syntax as the help epilog."""
    group = parser.add_argument_group("faults, external data, housing and bulk export")
    group.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="inject a fault, e.g. 'Condition:status=503,rate=0.2' (repeat; syntax below)",
    )
    group.add_argument("--faults", type=Path, metavar="FILE", help="fault rules from TOML/JSON")
    group.add_argument("--fault-seed", type=int, metavar="N", help="fault random seed (default 0)")
    group.add_argument(
        "--load",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="load a FHIR Bundle file or a directory of them, e.g. Synthea output (repeat)",
    )
    group.add_argument("--timeline", metavar="STEPS", help=_TIMELINE_HELP)
    group.add_argument(
        "--export-polls",
        type=int,
        default=0,
        metavar="N",
        help="bulk export status polls answered 202 before the manifest (default 0)",
    )
    # The epilog is laid out by hand; the description is wrapped here to match.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = textwrap.fill(parser.description or "", 78)
    parser.epilog = FAULT_SYNTAX


def configure(server: RunningMockServer, args: argparse.Namespace) -> list[str]:
    """Apply the flags to a built, not yet started, server; return lines to print."""
    # Imported here, not at the top: the flags are added to every command's parser,
    # and these bring the server's FastAPI app.
    from healthy_homes.mock_server.bulk import exports_of
    from healthy_homes.mock_server.faults import injector_of
    from healthy_homes.mock_server.housing import inbox_of, parse_timeline
    from healthy_homes.mock_server.loading import load_path

    notes = []
    config = config_from_cli(args.fault, args.faults, args.fault_seed)
    injector_of(server.app).configure(config)
    if config.rules:
        notes.append(f"Faults: {len(config.rules)} rule(s), seed {config.seed}")
    for path in args.load:
        try:
            report = load_path(server.store, path)
        except FileNotFoundError as exc:
            raise ConfigError(f"--load: {exc}") from None
        notes.append(f"{path}: {report.summary()}")
        notes.extend(f"  {source}: {problem}" for source, problem in report.failures[:10])
    if args.timeline:
        if args.mode != "housing":
            raise ConfigError("--timeline needs --mode housing")
        try:
            inbox_of(server.app).timeline = tuple(parse_timeline(args.timeline))
        except ValueError as exc:
            raise ConfigError(f"--timeline: {exc}") from None
        notes.append(f"Task timeline: {args.timeline}")
    if args.export_polls < 0:
        raise ConfigError("--export-polls must be >= 0")
    exports_of(server.app).polls = args.export_polls
    return notes


def endpoints(server: RunningMockServer, mode: str) -> list[str]:
    """The admin endpoints of a started server, for the console."""
    lines = [
        f"  Faults (admin):     GET/PUT/DELETE {server.url}/admin/faults",
        f"  Load a Bundle:      POST {server.url}/admin/load",
        f"  Bulk export:        {server.base_url}/Group/ID/$export (Prefer: respond-async)",
    ]
    if mode == "housing":
        lines.append(f"  Move a Task:        POST {server.url}/admin/tasks/ID/status")
    return lines
