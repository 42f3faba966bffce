"""``healthy-homes users``: add, list, disable users and set their passwords.

Passwords are read from a prompt (asked twice) or, with ``--password-stdin``, from the
first line of standard input; never from the command line, where they would show in the
process list and the shell history.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings
from healthy_homes.errors import AccessError
from healthy_homes.web.access import Role

if TYPE_CHECKING:
    from sqlmodel import Session

ROLE_NAMES = [r.value.replace("_", "-") for r in Role]


@contextlib.contextmanager
def _session(args: argparse.Namespace) -> Iterator[Session]:
    """One transaction on the configured database (committed when the block ends)."""
    # Imported here: every command's parser is built from this module.
    from healthy_homes.store.db import Database

    db = Database.from_settings(resolve_settings(args.config))
    try:
        db.upgrade()
        with db.session() as session:
            yield session
    finally:
        db.dispose()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (12+ characters): ")
    if getpass.getpass("Same password again: ") != first:
        raise AccessError("the two passwords differ")
    return first


def _add(args: argparse.Namespace) -> int:
    from healthy_homes.accounts.users import add_user, parse_role

    role = parse_role(args.role)
    password = _password(args)
    with _session(args) as session:
        add_user(
            session,
            username=args.username,
            display_name=args.name or args.username,
            role=role,
            organisation=args.org,
            password=password,
            now=SystemClock().now(),
            practitioner=args.practitioner,
        )
    print(f"{args.username}: {role.value} at {args.org}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from healthy_homes.accounts.users import list_users

    with _session(args) as session:
        found = list_users(session, args.org)
    for user in found:
        state = "disabled" if user.disabled else "active"
        print(f"{user.username}\t{user.role}\t{user.organisation}\t{state}\t{user.display_name}")
    if not found:
        print("no users")
    return 0


def _disable(args: argparse.Namespace) -> int:
    from healthy_homes.accounts.users import set_disabled

    with _session(args) as session:
        set_disabled(session, args.username, not args.enable)
    print(f"{args.username}: {'enabled' if args.enable else 'disabled, signed out everywhere'}")
    return 0


def _set_password(args: argparse.Namespace) -> int:
    from healthy_homes.accounts.users import set_password

    password = _password(args)
    with _session(args) as session:
        set_password(session, args.username, password, SystemClock().now())
    print(f"{args.username}: password changed, signed out everywhere")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``users`` commands."""
    users = subparsers.add_parser(
        "users",
        help="people who sign in to the pages: add, list, disable, set a password",
        description="Each user has one role in one organisation: clinician or practice-admin "
        "at a practice (ODS code), housing-officer or housing-manager in a housing team "
        "(team id). Passwords are asked for (or read from stdin), never given as arguments.",
    )
    commands = users.add_subparsers(dest="users_command", metavar="USERS_COMMAND", required=True)

    def sub(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        add_config_argument(parser)
        return parser

    def password_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input (no prompt)",
        )

    add = sub("add", "add a user")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLE_NAMES)
    add.add_argument("--org", required=True, help="practice ODS code or housing team id")
    add.add_argument("--name", help="display name (shown on pages and in records)")
    add.add_argument("--practitioner", help="a clinician's Practitioner/ID in the practice record")
    password_option(add)
    add.set_defaults(handler=_add)

    listing = sub("list", "list users (name, role, organisation, state)")
    listing.add_argument("--org", help="only this organisation")
    listing.set_defaults(handler=_list)

    disable = sub("disable", "disable a user and end their sessions")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="re-enable instead")
    disable.set_defaults(handler=_disable)

    password = sub("set-password", "set a user's password and end their sessions")
    password.add_argument("username")
    password_option(password)
    password.set_defaults(handler=_set_password)
