"""The users page: admins manage their practice's people, managers their team's, nobody else's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from healthy_homes.accounts import users
from healthy_homes.web.csrf import COOKIE, sign
from tests.access.apps import FACTORIES, PASSWORD, SECRET, AccessWorld, build_world

HOUSING = "healthy_homes.housing.app.create_housing_app"
OUTBOX = "healthy_homes.connector.delivery.pages.create_outbox_app"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    built = build_world(tmp_path)
    yield built
    built.db.dispose()


def _signed_in(world: AccessWorld, app: str, username: str) -> tuple[TestClient, str]:
    client = TestClient(FACTORIES[app](world).app, follow_redirects=False)
    found = FORM_TOKEN.search(client.get("/sign-in").text)
    assert found is not None
    token = found.group(1)
    fields = {"username": username, "password": PASSWORD, "csrf_token": token}
    assert client.post("/sign-in", data=fields).status_code == 303
    # Sign-in replaces the CSRF cookie: the signed-in pages carry a token for the new one.
    return client, sign(SECRET, client.cookies[COOKIE])


def test_a_manager_adds_an_officer_who_can_then_sign_in(world: AccessWorld) -> None:
    manager, token = _signed_in(world, HOUSING, "manager")
    page = manager.get("/users")
    assert page.status_code == 200 and "officer" in page.text
    assert "south.officer" not in page.text and "clinician" not in page.text  # own team only
    new = {"username": "nia", "name": "Nia New", "role": "housing_officer", "password": PASSWORD}
    assert manager.post("/users", data={**new, "csrf_token": token}).status_code == 303
    with world.db.session() as session:
        added = users.find(session, "nia")
        assert added is not None and (added.role, added.organisation) == (
            "housing_officer",
            "north",
        )
    officer, _ = _signed_in(world, HOUSING, "nia")
    assert officer.get("/").status_code == 200


def test_a_manager_cannot_make_practice_roles_or_touch_another_team(world: AccessWorld) -> None:
    manager, token = _signed_in(world, HOUSING, "manager")
    clinician = {"username": "dr.x", "name": "Dr X", "role": "clinician", "password": PASSWORD}
    refused = manager.post("/users", data={**clinician, "csrf_token": token})
    assert refused.status_code == 400 and "choose one of the roles listed" in refused.text
    other = manager.post("/users/south.officer/disable", data={"csrf_token": token})
    assert other.status_code == 404  # another team's person: as if nobody
    me = manager.post("/users/manager/disable", data={"csrf_token": token})
    assert me.status_code == 409
    with world.db.session() as session:
        assert users.find(session, "dr.x") is None
        south = users.find(session, "south.officer")
        assert south is not None and not south.disabled


def test_an_admin_disables_a_clinician_who_is_signed_out_at_once(world: AccessWorld) -> None:
    popup_app = FACTORIES["healthy_homes.flags.popup.app.create_popup_app"](world).app
    popup = TestClient(popup_app, follow_redirects=False)
    popup.cookies.set("hh_popup_session", world.token_for("clinician"))
    assert popup.get("/sign-in").status_code == 303  # signed in: sent on
    admin, token = _signed_in(world, OUTBOX, "admin")
    assert admin.post("/users/clinician/disable", data={"csrf_token": token}).status_code == 303
    assert popup.get("/sign-in").status_code == 200  # the session is gone
    assert admin.post("/users/officer/disable", data={"csrf_token": token}).status_code == 404
