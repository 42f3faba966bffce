"""``healthy-homes init`` and ``healthy-homes config check``."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from healthy_homes.config.loader import DEFAULT_PATH, load_settings


def example_text() -> str:
    """The commented example configuration shipped with the package."""
    return resources.files("healthy_homes.config").joinpath("example.toml").read_text("utf-8")


def _init(args: argparse.Namespace) -> int:
    target: Path = args.path
    if target.exists() and not args.force:
        print(f"{target} already exists; use --force to overwrite it")
        return 1
    target.write_text(example_text(), encoding="utf-8")
    print(f"wrote {target}; edit it, then run 'healthy-homes config check --config {target}'")
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    print(
        f"configuration OK: {len(settings.practices)} practice(s), "
        f"{len(settings.housing_services)} housing service(s)"
    )
    for practice in settings.practices:
        print(
            f"  {practice.ods_code} {practice.name}: registers {', '.join(practice.registers)};"
            f" auth {practice.auth.kind}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``init`` and ``config`` commands."""
    init = subparsers.add_parser(
        "init",
        help="write a commented example configuration file",
        description="Write a commented example configuration to edit for your practice.",
    )
    init.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="where to write it")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=_init)

    config = subparsers.add_parser(
        "config",
        help="check a configuration file",
        description="Validate configuration (file plus HEALTHY_HOMES__* environment overrides).",
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser("check", help="validate and summarise the configuration")
    add_config_argument(check)
    check.set_defaults(handler=_check)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The shared ``--config`` option."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML configuration file (default: $HEALTHY_HOMES_CONFIG or ./healthy-homes.toml)",
    )
