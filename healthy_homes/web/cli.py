"""``healthy-homes web``: install the NHS design system assets, serve the pop-up page."""

from __future__ import annotations

import argparse
from pathlib import Path

from healthy_homes.web import assets


def _setup(args: argparse.Namespace) -> int:
    target = Path(args.assets_dir) if args.assets_dir else assets.default_assets_dir()
    installed = assets.install(target)
    state = "installed" if installed else "already installed"
    print(f"nhsuk-frontend {assets.NHSUK_FRONTEND_VERSION} {state} in {target}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``web`` commands."""
    web = subparsers.add_parser(
        "web",
        help="clinician web pages: install their assets, serve the pop-up",
        description="The clinician-facing pages (NHS design system). 'setup' installs "
        "nhsuk-frontend's CSS and JavaScript with npm; 'popup' serves the pop-up page that "
        "prompts a clinician when a flagged patient arrives.",
    )
    commands = web.add_subparsers(dest="web_command", metavar="WEB_COMMAND", required=True)

    setup = commands.add_parser(
        "setup",
        help=f"install nhsuk-frontend {assets.NHSUK_FRONTEND_VERSION} with npm",
        description=f"Install nhsuk-frontend {assets.NHSUK_FRONTEND_VERSION} from the npm "
        f"registry into an assets directory (default ${assets.ENV_VAR}, else "
        f"{assets.default_assets_dir()}). Needs Node.js and npm; does nothing when the "
        "right version is already there.",
    )
    setup.add_argument("--assets-dir", help="where to install (default: see above)")
    setup.set_defaults(handler=_setup)
