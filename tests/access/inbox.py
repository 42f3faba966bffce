"""The housing inbox as a signed-out browser would meet it, for sign-in tests."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.access.apps import FACTORIES, PASSWORD, AccessWorld

HOUSING = "healthy_homes.housing.app.create_housing_app"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def inbox_client(world: AccessWorld) -> TestClient:
    """A client for the housing inbox over the world's database and clock."""
    return TestClient(
        FACTORIES[HOUSING](world).app,
        base_url="http://inbox.test",
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )


def page_token(client: TestClient, path: str = "/sign-in") -> str:
    """The CSRF token a page's forms carry."""
    found = FORM_TOKEN.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> int:
    """Post the sign-in form as a browser would; the response's status."""
    fields = {"username": username, "password": password, "csrf_token": page_token(client)}
    return client.post("/sign-in", data=fields).status_code
