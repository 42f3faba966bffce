"""Sign-in over HTTP: cookies, the generic refusal, lock-outs, timeouts, sign-out, CSRF.

The housing inbox and the outbox app stand in for every app: they share the sign-in
code (``healthy_homes.web.signin``) and the account store. Time is a FixedClock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from healthy_homes.accounts import users
from healthy_homes.store.access_models import UserSession
from tests.access.apps import (
    FACTORIES,
    PASSWORD,
    AccessWorld,
    build_world,
    concrete,
    routes_of,
)

HOUSING = "healthy_homes.housing.app.create_housing_app"
OUTBOX = "healthy_homes.connector.delivery.pages.create_outbox_app"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
GENERIC = "The username or password is not right, or sign-in is paused"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    built = build_world(tmp_path)
    yield built
    built.db.dispose()


def _client(
    world: AccessWorld, app: str = HOUSING, *, address: str = "10.0.0.1", https: bool = False
) -> TestClient:
    return TestClient(
        FACTORIES[app](world).app,
        base_url="https://inbox.test" if https else "http://inbox.test",
        headers={"Accept": "text/html"},
        follow_redirects=False,
        client=(address, 5000),
    )


def _form_token(client: TestClient) -> str:
    found = FORM_TOKEN.search(client.get("/sign-in").text)
    assert found is not None
    return found.group(1)


def _sign_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    token = _form_token(client)
    return client.post(
        "/sign-in", data={"username": username, "password": password, "csrf_token": token}
    )


def test_https_sign_in_sets_a_host_prefixed_secure_strict_http_only_cookie(
    world: AccessWorld,
) -> None:
    with _client(world, https=True) as client:
        done = _sign_in(client, "officer")
        assert done.status_code == 303 and done.headers["location"] == "/"
        cookies = [v for k, v in done.headers.multi_items() if k == "set-cookie"]
        [session] = [c for c in cookies if c.startswith("__Host-hh_housing_session=")]
        attributes = {a.strip().lower() for a in session.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=strict"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)  # __Host- forbids it
        assert client.get("/").status_code == 200


def test_the_cookie_holds_a_token_the_database_keeps_only_as_a_hash(world: AccessWorld) -> None:
    with _client(world) as client:
        _sign_in(client, "officer")
        value = client.cookies["hh_housing_session"]
    with world.db.session() as session:
        stored = [s.id for s in session.exec(select(UserSession)).all()]
    assert stored == [users.token_hash(value)] and value not in stored


def test_every_refusal_says_the_same_thing(world: AccessWorld) -> None:
    with world.db.session() as session:
        users.set_disabled(session, "manager")
    with _client(world) as client:
        answers = [
            _sign_in(client, "officer", "wrong password!"),
            _sign_in(client, "nobody.at.all"),
            _sign_in(client, "manager"),  # disabled
            _sign_in(client, "clinician"),  # right password, but not a housing user
        ]
    for answer in answers:
        assert answer.status_code == 400 and GENERIC in answer.text
    # Only the echoed username, the CSP nonce and the CSRF token may differ.
    texts = {re.sub(r'(value|nonce|content)="[^"]*"', "", a.text) for a in answers}
    assert len(texts) == 1, "nothing in the page tells one refusal from another"
    with world.db.session() as session:
        assert session.exec(select(UserSession)).all() == []


def test_sign_in_locks_a_username_after_five_failures_until_the_window_passes(
    world: AccessWorld,
) -> None:
    with _client(world) as client:
        for _ in range(5):
            assert _sign_in(client, "officer", "not the password").status_code == 400
        assert _sign_in(client, "officer").status_code == 400  # right password, locked
    with _client(world, address="10.0.0.2") as elsewhere:
        assert _sign_in(elsewhere, "officer").status_code == 400  # locked wherever it comes from
        assert _sign_in(elsewhere, "manager").status_code == 303  # other names are not
    world.clock.advance(timedelta(minutes=15, seconds=1))
    with _client(world) as client:
        assert _sign_in(client, "officer").status_code == 303


def test_sign_in_locks_an_address_after_twenty_failures(world: AccessWorld) -> None:
    with _client(world, address="10.6.6.6") as attacker:
        for n in range(20):
            assert _sign_in(attacker, f"guess{n}", "not the password").status_code == 400
        assert _sign_in(attacker, "officer").status_code == 400  # even a right password
    with _client(world, address="10.0.0.3") as colleague:
        assert _sign_in(colleague, "officer").status_code == 303
    world.clock.advance(timedelta(minutes=16))
    with _client(world, address="10.6.6.6") as later:
        assert _sign_in(later, "officer").status_code == 303


def test_a_session_ends_after_thirty_idle_minutes(world: AccessWorld) -> None:
    with _client(world) as client:
        _sign_in(client, "officer")
        for _ in range(3):  # used every 20 minutes: stays alive
            world.clock.advance(timedelta(minutes=20))
            assert client.get("/").status_code == 200
        world.clock.advance(timedelta(minutes=30))
        gone = client.get("/")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/sign-in")


def test_a_session_ends_ten_hours_after_sign_in_however_busy(world: AccessWorld) -> None:
    with _client(world) as client:
        _sign_in(client, "officer")
        for _ in range(29):  # every 20 minutes for 9 h 40 min
            world.clock.advance(timedelta(minutes=20))
            assert client.get("/").status_code == 200
        world.clock.advance(timedelta(minutes=20))
        assert client.get("/").status_code == 303


def test_sign_out_ends_the_session_on_the_server_too(world: AccessWorld) -> None:
    with _client(world) as client:
        _sign_in(client, "officer")
        stolen = client.cookies["hh_housing_session"]
        token = FORM_TOKEN.search(client.get("/").text)
        assert token is not None
        assert client.post("/sign-out", data={"csrf_token": token.group(1)}).status_code == 303
    with _client(world) as replay:
        replay.cookies.set("hh_housing_session", stolen)
        assert replay.get("/").status_code == 303  # the old cookie is worth nothing


def test_disabling_a_user_or_changing_their_password_ends_their_sessions(
    world: AccessWorld,
) -> None:
    with _client(world) as first, _client(world) as second:
        _sign_in(first, "officer")
        _sign_in(second, "manager")
        with world.db.session() as session:
            users.set_disabled(session, "officer")
            users.set_password(session, "manager", "a brand new password", world.clock.now())
        assert first.get("/").status_code == 303
        assert second.get("/").status_code == 303
        assert _sign_in(second, "manager", "a brand new password").status_code == 303


def test_sign_in_goes_back_where_it_was_asked_but_never_off_site(world: AccessWorld) -> None:
    with _client(world) as client:
        asked = client.get("/capacity")
        assert asked.headers["location"] == "/sign-in?next=%2Fcapacity"
        form = client.get(asked.headers["location"])
        assert 'name="next" value="/capacity"' in form.text
        token = _form_token(client)
        fields = {"username": "manager", "password": PASSWORD, "csrf_token": token}
        done = client.post("/sign-in", data={**fields, "next": "/capacity"})
        assert done.headers["location"] == "/capacity"
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        with _client(world) as client:
            token = _form_token(client)
            fields = {"username": "manager", "password": PASSWORD, "csrf_token": token}
            done = client.post("/sign-in", data={**fields, "next": target})
            assert done.headers["location"] == "/", target


@pytest.mark.parametrize(("app", "username"), [(HOUSING, "manager"), (OUTBOX, "admin")])
def test_every_state_changing_route_refuses_a_missing_or_bad_csrf_token(
    world: AccessWorld, app: str, username: str
) -> None:
    built = FACTORIES[app](world)
    unsafe = [(m, p) for m, p in routes_of(built.app) if m != "GET" and "/teams/" not in p]
    assert len(unsafe) >= 3, unsafe
    with _client(world, app) as client:
        good = _form_token(client)  # the CSRF cookie outlives sign-in
        wrong = ("y" if good[0] == "x" else "x") + good[1:]  # never the token itself
        assert _sign_in(client, username).status_code == 303
        for method, path in unsafe:
            url = concrete(path)
            missing = client.request(method, url, data={"x": "1"})
            bad = client.request(method, url, data={"csrf_token": wrong})
            for refused in (missing, bad):
                assert refused.status_code == 403 and "CSRF" in refused.text, (method, path)
        # Still signed in: the refusals were the CSRF check's, not a lost session.
        assert client.get("/sign-in").status_code == 303
