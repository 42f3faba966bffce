"""``healthy-homes web``: install the NHS design system assets, serve the pop-up page."""

from __future__ import annotations

import argparse
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from healthy_homes.web import assets

if TYPE_CHECKING:
    from healthy_homes.web.identity import ProxyHeaderIdentity

SECRET_ENV = "HEALTHY_HOMES_WEB_CSRF_SECRET"  # noqa: S105 - the variable name, not a secret


def _setup(args: argparse.Namespace) -> int:
    target = Path(args.assets_dir) if args.assets_dir else assets.default_assets_dir()
    installed = assets.install(target)
    state = "installed" if installed else "already installed"
    print(f"nhsuk-frontend {assets.NHSUK_FRONTEND_VERSION} {state} in {target}")
    return 0


def csrf_secret() -> bytes:
    """$HEALTHY_HOMES_WEB_CSRF_SECRET, else a new one (pages reload after a restart)."""
    configured = os.environ.get(SECRET_ENV, "")
    return configured.encode() if len(configured) >= 16 else secrets.token_bytes(32)


def trusted_proxy_from(args: argparse.Namespace) -> ProxyHeaderIdentity | None:
    """The reverse proxy sign-in option, only when --trusted-proxy names the proxy."""
    if not args.trusted_proxy:
        return None
    # Imported here: it brings Starlette, which only the serving commands need.
    from healthy_homes.web.identity import ProxyHeaderIdentity

    return ProxyHeaderIdentity(trusted_proxies=args.trusted_proxy, user_header=args.identity_header)


def add_sign_in_arguments(parser: argparse.ArgumentParser) -> None:
    """--secure-cookies, and the optional trusted reverse proxy sign-in."""
    parser.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark the session cookie Secure (__Host-) even when the proxy does not say HTTPS",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="CIDR",
        help="sign-in by an authenticating reverse proxy at this address or network "
        "(repeatable): its header names a user who must exist ('healthy-homes users'); "
        "off unless given",
    )
    parser.add_argument(
        "--identity-header",
        default="X-Remote-User",
        help="header naming the signed-in user, set by the trusted proxy (X-Remote-User)",
    )


def _popup(args: argparse.Namespace) -> int:
    # Imported here: the web infrastructure itself never depends on a domain package.
    from healthy_homes.web.cli_popup import serve_demo, serve_practice

    if args.demo:
        return serve_demo(args, csrf_secret())
    return serve_practice(args, csrf_secret())


def wait_forever() -> None:
    """Block until Ctrl-C."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping")


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

    popup = commands.add_parser(
        "popup",
        help="serve the pop-up page for one practice",
        description="Serve the pop-up page: it watches today's appointments and, when a "
        "flagged patient arrives, opens a prompt with the consent, decline and 'discuss next "
        "time' actions. Clinicians of the practice sign in at /sign-in (add them with "
        "'healthy-homes users add --role clinician'). Set $" + SECRET_ENV + " (16+ "
        "characters) to keep pages working across restarts.",
    )
    popup.add_argument("--config", type=Path, help="configuration file (TOML)")
    popup.add_argument("--practice", help="ODS code of the practice (default: the first one)")
    popup.add_argument("--host", default="127.0.0.1", help="address to listen on")
    popup.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    popup.add_argument("--poll-seconds", type=float, default=2.0, help="arrival check interval")
    popup.add_argument("--assets-dir", help="nhsuk-frontend assets (see 'web setup')")
    add_sign_in_arguments(popup)
    popup.add_argument(
        "--demo",
        action="store_true",
        help="try it on a synthetic practice: mock servers, connector run, a demo clinician "
        "account (printed), and Enter marks the next flagged patient as arrived",
    )
    popup.set_defaults(handler=_popup)
