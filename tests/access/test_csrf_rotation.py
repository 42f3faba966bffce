"""The CSRF cookie is replaced at sign-in and sign-out (login CSRF, fixation).

A value planted before sign-in (by an attacker on a shared machine, or a page that set
it) must be worth nothing once someone signs in: its token is refused afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.web.csrf import COOKIE, sign
from tests.access.apps import PASSWORD, SECRET, AccessWorld, build_world
from tests.access.inbox import inbox_client, page_token

PLANTED = "p" * 43


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    built = build_world(tmp_path)
    yield built
    built.db.dispose()


def test_a_planted_csrf_cookie_is_replaced_at_sign_in_and_its_token_refused(
    world: AccessWorld,
) -> None:
    with inbox_client(world) as client:
        client.cookies.set(COOKIE, PLANTED, domain="inbox.test")
        planted_token = page_token(client, "/sign-in")
        assert planted_token == sign(SECRET, PLANTED)  # the page signed the planted value
        fields = {"username": "officer", "password": PASSWORD, "csrf_token": planted_token}
        done = client.post("/sign-in", data=fields)
        assert done.status_code == 303
        fresh = client.cookies[COOKIE]
        assert fresh != PLANTED
        # The attacker's token (for the planted value) no longer passes...
        refused = client.post("/capacity", data={"csrf_token": planted_token})
        assert refused.status_code == 403
        # ...while the signed-in page's own token does.
        own = page_token(client, "/")
        assert own == sign(SECRET, fresh)
        assert client.post("/sign-out", data={"csrf_token": own}).status_code == 303
        assert client.cookies[COOKIE] not in (fresh, PLANTED)


def test_a_failed_sign_in_keeps_the_cookie(world: AccessWorld) -> None:
    with inbox_client(world) as client:
        token = page_token(client, "/sign-in")
        before = client.cookies[COOKIE]
        fields = {"username": "officer", "password": "wrong", "csrf_token": token}
        assert client.post("/sign-in", data=fields).status_code == 400
        assert client.cookies[COOKIE] == before
