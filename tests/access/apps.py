"""Every app the product serves, built in one place, and a way to walk all their routes.

``FACTORIES`` is the one list of app factories the access tests walk. A test scans the
package for functions named ``create_*app`` and fails for any not listed here or in
``NOT_OURS`` (with the reason), so a new app cannot slip past the route walk.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from healthy_homes.accounts import DatabaseAccounts
from healthy_homes.accounts.passwords import hash_password
from healthy_homes.accounts.users import add_user
from healthy_homes.clock import FixedClock
from healthy_homes.config.models import HousingServiceConfig, PracticeConfig
from healthy_homes.crypto import set_keyring
from healthy_homes.housing.teams import add_team
from healthy_homes.store.db import Database
from healthy_homes.web.access import Role
from healthy_homes.web.csrf import COOKIE, sign
from tests.conftest import test_keyring
from tests.store.templates import sqlite_copy

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PRACTICE = "A12345"
OTHER_PRACTICE = "B99999"
PASSWORD = "correct horse battery staple"
SECRET = secrets.token_bytes(32)
#: One user per role (and a clinician of another practice); teams north and south.
USERS: dict[str, tuple[Role, str]] = {
    "clinician": (Role.CLINICIAN, PRACTICE),
    "admin": (Role.PRACTICE_ADMIN, PRACTICE),
    "officer": (Role.HOUSING_OFFICER, "north"),
    "manager": (Role.HOUSING_MANAGER, "north"),
    "south.officer": (Role.HOUSING_OFFICER, "south"),
    "other.clinician": (Role.CLINICIAN, OTHER_PRACTICE),
}


@dataclass
class AccessWorld:
    """One database with every kind of user, and a fixed clock."""

    db: Database
    clock: FixedClock
    team_tokens: dict[str, str]

    sessions: dict[str, str] = field(default_factory=dict)

    def token_for(self, username: str, address: str = "10.9.8.7") -> str:
        """A live session token for the user (minted once, as the sign-in form would)."""
        if username not in self.sessions:
            store = DatabaseAccounts(self.db, self.clock)
            token = store.sign_in(username, PASSWORD, address)
            assert token is not None
            self.sessions[username] = token
        return self.sessions[username]


def _teams_and_users(db: Database) -> dict[str, str]:
    """Teams north and south and every user in ``USERS``: the teams' tokens."""
    tokens: dict[str, str] = {}
    with db.session() as session:
        for team in ("north", "south"):
            tokens[team] = add_team(session, team, f"{team.title()} team", NOW)
    with db.session() as session:
        for username, (role, org) in USERS.items():
            user = add_user(
                session,
                username=username,
                display_name=username.title(),
                role=role,
                organisation=org,
                password=PASSWORD,
                now=NOW,
            )
            # A cheaper scrypt cost for these fixtures' every sign-in: the stored hash
            # names its cost and verification follows it, so sign-in runs the same code.
            # (The product's cost is tests/housing/test_pages_http.py's business.)
            user.password_hash = hash_password(PASSWORD, n=2**12)
    return tokens


def build_world(tmp: Path) -> AccessWorld:
    """A fresh SQLite database with teams north and south and every user in ``USERS``.

    The database is a copy of one made once per test run (tests/store/templates.py): six
    scrypt hashes and a migration for every test would cost most of its time.
    """
    set_keyring(test_keyring())  # module-scoped worlds start before the per-test keyring
    db, tokens = sqlite_copy(tmp / "access.db", _teams_and_users)
    return AccessWorld(db, FixedClock(NOW), dict(tokens))


@dataclass
class Built:
    """An app ready for requests, and the name of its session cookie."""

    app: ASGIApp
    cookie: str | None
    #: Path parameters that must be real for the request to reach the check (else any id).
    params: dict[str, str] = field(default_factory=dict)


def _popup(world: AccessWorld) -> Built:
    from healthy_homes.flags.popup import PopupConfig, create_popup_app

    # Nothing listens on these: the walk never starts the app's lifespan (the watcher).
    practice = PracticeConfig.model_validate(
        {"ods_code": PRACTICE, "name": "Test Surgery", "fhir_base_url": "http://127.0.0.1:9/fhir"}
    )
    service = HousingServiceConfig.model_validate(
        {"id": "shh", "name": "Test team", "fhir_base_url": "http://127.0.0.1:9/fhir"}
    )
    app = create_popup_app(
        PopupConfig(practice, service), db=world.db, csrf_secret=SECRET, clock=world.clock
    )
    return Built(app, "hh_popup_session")


def _outbox(world: AccessWorld) -> Built:
    from healthy_homes.connector.delivery.pages import create_outbox_app

    return Built(create_outbox_app(world.db, world.clock, csrf_secret=SECRET), "hh_admin_session")


def _housing(world: AccessWorld) -> Built:
    from healthy_homes.housing.app import create_housing_app

    app = create_housing_app(db=world.db, csrf_secret=SECRET, clock=world.clock)
    return Built(app, "hh_housing_session")


def _cds_hooks(world: AccessWorld) -> Built:
    from healthy_homes.flags.cds_hooks.app import create_app
    from healthy_homes.flags.cds_hooks.service import CdsHooksService
    from tests.cds_hooks.conftest import settings_for

    nowhere = "http://127.0.0.1:9/fhir"
    service = CdsHooksService(settings_for(nowhere, nowhere), world.db, world.clock)
    # Service ids are public (discovery lists them); each call must still carry a JWT.
    return Built(create_app(service), None, {"service_id": "healthy-homes-patient-view"})


METRICS_TOKEN = "scraper-token-0123456789"


def _ops(world: AccessWorld) -> Built:
    from healthy_homes.config.ops import OpsConfig
    from healthy_homes.ops.app import create_ops_app

    config = OpsConfig(metrics_token=METRICS_TOKEN)  # type: ignore[arg-type]
    app = create_ops_app(world.db, config, world.clock, scheduler_running=lambda: True)
    return Built(app, None)


#: The one list: every app factory the product serves, by the factory's qualified name.
FACTORIES: dict[str, Callable[[AccessWorld], Built]] = {
    "healthy_homes.flags.popup.app.create_popup_app": _popup,
    "healthy_homes.connector.delivery.pages.create_outbox_app": _outbox,
    "healthy_homes.housing.app.create_housing_app": _housing,
    "healthy_homes.flags.cds_hooks.app.create_app": _cds_hooks,
    "healthy_homes.ops.app.create_ops_app": _ops,
}

#: Factories that are not apps we serve to people or EHRs, and why.
NOT_OURS = {
    "healthy_homes.web.app.create_web_app": "the shared base every page app starts from",
    "healthy_homes.housing.fhir_api.create_fhir_api": "served inside create_housing_app",
    "healthy_homes.mock_server.app.create_app": "stands in for someone else's FHIR server",
}

#: Open on purpose: sign-in itself, static assets, health checks, CDS Hooks discovery,
#: and a FHIR base's CapabilityStatement (public by FHIR and SMART convention; no data).
ALLOWED_OPEN = re.compile(
    r"^(/sign-in|/sign-out|/assets(/.*)?|/static/.*|/healthz|/readyz|/cds-services"
    r"|/teams/\{team\}/fhir/metadata)$"
)
STATIC_PREFIXES = ("/assets", "/static/")


def _children(app: Any) -> Iterator[tuple[str, Any]]:
    """Sub-apps of an ASGI app: mounted ones, wrapped ones, or the inbox's two halves."""
    for name in ("pages", "api", "app"):
        inner = getattr(app, name, None)
        if inner is not None and not isinstance(inner, type):
            yield "", inner


def routes_of(app: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (method, path) the app answers; static mounts come back as one GET each."""
    routes: list[BaseRoute] | None = getattr(app, "routes", None)
    if routes is None:
        for extra, inner in _children(app):
            yield from routes_of(inner, prefix + extra)
        return
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            # FastAPI includes routers lazily: walk the router with its include prefix.
            context = getattr(route, "include_context", None)
            yield from routes_of(included, prefix + str(getattr(context, "prefix", "")))
        elif isinstance(route, Mount):
            inner_routes = getattr(route.app, "routes", None)
            if inner_routes is None and not route.path.startswith(STATIC_PREFIXES):
                yield from routes_of(route.app, prefix + route.path)
            elif inner_routes is None:
                yield "GET", prefix + route.path
            else:
                yield from routes_of(route.app, prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, prefix + route.path


def concrete(path: str, params: dict[str, str] | None = None) -> str:
    """The path with each parameter filled in: as given, else an id nobody has."""
    given = params or {}
    return re.sub(r"\{([^}:]+)[^}]*\}", lambda m: given.get(m[1], "no-such-id-42"), path)


def csrf_headers(cookie_value: str = "c" * 40) -> dict[str, str]:
    """A valid CSRF cookie and token, so a refusal can only come from access control."""
    return {"Cookie": f"{COOKIE}={cookie_value}", "X-CSRF-Token": sign(SECRET, cookie_value)}
