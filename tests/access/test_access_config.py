"""The ``[access]`` section sets the session timeouts and sign-in lock-out over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from healthy_homes.accounts import SessionPolicy
from healthy_homes.config.loader import load_settings
from healthy_homes.housing.app import create_housing_app
from tests.access.apps import PASSWORD, SECRET, AccessWorld, build_world
from tests.access.test_sessions import FORM_TOKEN

CONFIG = """
[access]
idle_minutes = 5
absolute_hours = 1
username_failures = 2
lockout_window_minutes = 10
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    built = build_world(tmp_path)
    yield built
    built.db.dispose()


def _client(world: AccessWorld, tmp_path: Path) -> TestClient:
    path = tmp_path / "healthy-homes.toml"
    path.write_text(CONFIG)
    policy = SessionPolicy.from_config(load_settings(path, env=False).access)
    app = create_housing_app(
        db=world.db, csrf_secret=SECRET, clock=world.clock, session_policy=policy
    )
    return TestClient(
        app, base_url="http://inbox.test", headers={"Accept": "text/html"}, follow_redirects=False
    )


def _sign_in(client: TestClient, password: str = PASSWORD) -> int:
    found = FORM_TOKEN.search(client.get("/sign-in").text)
    assert found is not None
    fields = {"username": "officer", "password": password, "csrf_token": found.group(1)}
    return client.post("/sign-in", data=fields).status_code


def test_a_configured_idle_timeout_ends_the_session(world: AccessWorld, tmp_path: Path) -> None:
    with _client(world, tmp_path) as client:
        assert _sign_in(client) == 303
        world.clock.advance(timedelta(minutes=4))
        assert client.get("/").status_code == 200  # within 5 minutes: still signed in
        world.clock.advance(timedelta(minutes=5))  # the default (30) would keep it
        gone = client.get("/")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/sign-in")


def test_configured_lock_out_limit_and_window(world: AccessWorld, tmp_path: Path) -> None:
    with _client(world, tmp_path) as client:
        assert _sign_in(client, "wrong") == 400
        assert _sign_in(client, "wrong") == 400
        assert _sign_in(client) == 400  # two failures pause it (the default allows five)
        world.clock.advance(timedelta(minutes=10))
        assert _sign_in(client) == 303


def test_idle_longer_than_absolute_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[access]\nidle_minutes = 120\nabsolute_hours = 1\n")
    with pytest.raises(Exception, match="idle_minutes"):
        load_settings(path, env=False)
