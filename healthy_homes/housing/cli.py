"""``healthy-homes housing``: serve the inbox, add teams and officers, set capacity."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING

from healthy_homes.clock import SystemClock
from healthy_homes.config.loader import resolve_settings
from healthy_homes.errors import ConfigError

if TYPE_CHECKING:
    from healthy_homes.housing.email_intake import MailIntake
    from healthy_homes.store.db import Database

PASSWORD_ENV = "HEALTHY_HOMES_HOUSING_PASSWORD"  # noqa: S105 - the variable name


def _db(args: argparse.Namespace) -> Database:
    # Imported here, like each command's modules: every command's parser is built from
    # this module.
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    db = Database.from_settings(settings)
    db.upgrade()
    return db


def _add_team(args: argparse.Namespace) -> int:
    from healthy_homes.housing.teams import add_team

    db = _db(args)
    try:
        with db.session() as session:
            token = add_team(session, args.team, args.name or args.team, SystemClock().now())
    finally:
        db.dispose()
    print(f"Team {args.team}: FHIR base /teams/{args.team}/fhir")
    print(f"Bearer token (shown once; give it to the connector): {token}")
    return 0


def _add_user(args: argparse.Namespace) -> int:
    from healthy_homes.housing.teams import add_user

    password = os.environ.get(PASSWORD_ENV) or getpass.getpass("Password (12+ characters): ")
    db = _db(args)
    try:
        with db.session() as session:
            add_user(
                session, args.team, args.username, args.name or "", password, SystemClock().now()
            )
    finally:
        db.dispose()
    print(f"Officer {args.username} can sign in to team {args.team}'s inbox")
    return 0


def _set_capacity(args: argparse.Namespace) -> int:
    from healthy_homes.housing.teams import set_capacity

    per_week = None if args.per_week.lower() in ("none", "unlimited") else int(args.per_week)
    db = _db(args)
    try:
        with db.session() as session:
            set_capacity(session, args.team, per_week, args.overdue_days)
    finally:
        db.dispose()
    print(f"Team {args.team}: {per_week if per_week is not None else 'no limit'} a week")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from healthy_homes.accounts import SessionPolicy
    from healthy_homes.housing.app import create_housing_app
    from healthy_homes.serving import ServerThread
    from healthy_homes.web.cli import csrf_secret, trusted_proxy_from, wait_forever

    access = resolve_settings(args.config).access
    db = _db(args)
    app = create_housing_app(
        db=db,
        csrf_secret=csrf_secret(),
        assets_dir=Path(args.assets_dir) if args.assets_dir else None,
        secure_cookies=args.secure_cookies or access.secure_cookies,
        session_policy=SessionPolicy.from_config(access),
        trusted_proxy=trusted_proxy_from(args),
    )
    server = ServerThread(app, args.host, args.port)
    print(f"Housing inbox: {server.start()}/ (FHIR bases under /teams/TEAM/fhir)")
    intake = _mail_intake(args, db)
    try:
        wait_forever()
    finally:
        if intake is not None:
            intake.stop()
        server.stop()
        db.dispose()
    return 0


def _mail_intake(args: argparse.Namespace, db: Database) -> MailIntake | None:
    """The SMTP intake for emailed referrals, when ``--smtp-port`` asks for one."""
    if not args.smtp_port:
        return None
    from healthy_homes.housing.email_intake import MailIntake, server_tls

    if not (args.mail_domain and args.smtp_cert and args.smtp_key):
        raise ConfigError("--smtp-port needs --mail-domain, --smtp-cert and --smtp-key")
    intake = MailIntake(
        db,
        SystemClock(),
        domain=args.mail_domain,
        tls=server_tls(args.smtp_cert, args.smtp_key),
        host=args.host,
        port=args.smtp_port,
        senders=args.smtp_sender or None,
    ).start()
    print(f"Mail intake: {args.host}:{intake.port}, TEAM@{args.mail_domain} (STARTTLS required)")
    return intake


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``housing`` commands."""
    housing = subparsers.add_parser(
        "housing",
        help="the housing inbox: a FHIR endpoint and pages for a team without a case system",
        description="The housing inbox receives referrals at /teams/TEAM/fhir (bearer token "
        "per team) and gives the team's officers a queue, the referral's detail, accept or "
        "decline, contact, visit and outcome; the Task moves are what the practice sees.",
    )
    commands = housing.add_subparsers(dest="housing_command", metavar="HOUSING_COMMAND")
    commands.required = True

    def sub(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--config", type=Path, help="configuration file (TOML)")
        return parser

    serve = sub("serve", "serve the inbox pages and the teams' FHIR bases")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8090, help="port (default 8090)")
    serve.add_argument("--assets-dir", help="nhsuk-frontend assets (see 'web setup')")
    from healthy_homes.web.cli import add_sign_in_arguments

    add_sign_in_arguments(serve)  # --secure-cookies, and the opt-in trusted proxy
    serve.add_argument(
        "--smtp-port",
        type=int,
        help="also take emailed referrals over SMTP on this port (STARTTLS required)",
    )
    serve.add_argument("--mail-domain", help="mail domain of the teams' mailboxes (TEAM@DOMAIN)")
    serve.add_argument("--smtp-cert", help="PEM certificate the SMTP intake presents")
    serve.add_argument("--smtp-key", help="PEM private key of that certificate")
    serve.add_argument(
        "--smtp-sender",
        action="append",
        help="accept mail only from this sender address (repeatable; default: any)",
    )
    serve.set_defaults(handler=_serve)

    team = sub("add-team", "add a team (or issue it a new bearer token)")
    team.add_argument("team", help="team id: lower-case letters, digits, hyphens")
    team.add_argument("--name", help="the team's name as officers see it")
    team.set_defaults(handler=_add_team)

    user = sub("add-user", f"add an officer to a team (password from ${PASSWORD_ENV} or asked)")
    user.add_argument("team")
    user.add_argument("username")
    user.add_argument("--name", help="display name")
    user.set_defaults(handler=_add_user)

    cap = sub("set-capacity", "set new referrals per week ('none' for no limit)")
    cap.add_argument("team")
    cap.add_argument("per_week")
    cap.add_argument("--overdue-days", type=int, help="age at which a referral shows overdue")
    cap.set_defaults(handler=_set_capacity)
