"""Every route of every app refuses a request without a session (or token), bar an allowlist.

The apps come from ``tests/access/apps.py`` (the one list). Each unsafe request carries
a valid CSRF token, so a refusal there is access control's, not the CSRF check's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.access.apps import (
    ALLOWED_OPEN,
    FACTORIES,
    METRICS_TOKEN,
    NOT_OURS,
    AccessWorld,
    build_world,
    concrete,
    csrf_headers,
    routes_of,
)

PACKAGE = Path(__file__).resolve().parents[2] / "healthy_homes"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccessWorld]:
    built = build_world(tmp_path_factory.mktemp("access"))
    yield built
    built.db.dispose()


def _factories_in_the_package() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            name = getattr(node, "name", "")
            if isinstance(node, ast.FunctionDef) and name.startswith("create_"):
                found.update([f"{module}.{name}"] if name.endswith(("app", "api")) else [])
    return found


def test_every_app_factory_in_the_package_is_walked_or_explained() -> None:
    unknown = _factories_in_the_package() - set(FACTORIES) - set(NOT_OURS)
    assert not unknown, f"add these to tests/access/apps.py FACTORIES (and guard them): {unknown}"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_no_route_answers_without_a_session(world: AccessWorld, name: str) -> None:
    built = FACTORIES[name](world)
    walked = list(routes_of(built.app))
    assert len(walked) >= 2, walked
    client = TestClient(built.app, follow_redirects=False)  # no lifespan: nothing starts
    open_routes, refused = [], []
    for method, path in walked:
        if ALLOWED_OPEN.match(path):
            open_routes.append(path)
            continue
        url = concrete(path, built.params)
        for accept in ("application/json", "text/html"):
            headers = {"Accept": accept, **csrf_headers()}
            answer = client.request(method, url, headers=headers, json={})
            to_sign_in = answer.status_code == 303 and answer.headers["location"].startswith(
                "/sign-in?next="
            )
            if accept == "text/html" and method == "GET":
                # A page sends the browser to sign in; an API (FHIR, CDS Hooks) says 401.
                assert to_sign_in or answer.status_code == 401, (method, path, answer.status_code)
            else:
                assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
        refused.append((method, path))
    assert refused, "the walk found routes to refuse"


_CDS = "healthy_homes.flags.cds_hooks.app.create_app"


def test_the_walk_sees_the_routes_that_matter(world: AccessWorld) -> None:
    """The walker itself finds what each app serves (a walker that sees nothing proves nothing)."""
    seen = {name: set(routes_of(FACTORIES[name](world).app)) for name in FACTORIES}
    popup = seen["healthy_homes.flags.popup.app.create_popup_app"]
    assert {("GET", "/"), ("GET", "/events"), ("POST", "/api/flags/{flag_id}/consent")} <= popup
    housing = seen["healthy_homes.housing.app.create_housing_app"]
    assert {("POST", "/referrals/{id}/{action}"), ("POST", "/capacity")} <= housing
    assert any(path.startswith("/teams/") for _, path in housing)  # the FHIR API half
    outbox = seen["healthy_homes.connector.delivery.pages.create_outbox_app"]
    assert ("POST", "/referrals/outbox/{referral_id}/retry") in outbox
    cds = seen[_CDS]
    assert {("GET", "/cds-services"), ("POST", "/cds-services/{service_id}/feedback")} <= cds


def test_bad_and_missing_jwts_are_refused_by_cds_hooks_including_feedback(
    world: AccessWorld,
) -> None:
    client = TestClient(FACTORIES[_CDS](world).app)
    assert client.get("/cds-services").status_code == 200  # discovery is public by the spec
    service = "/cds-services/healthy-homes-patient-view"
    for path in (service, f"{service}/feedback"):
        for auth in ({}, {"Authorization": "Bearer not.a.jwt"}):
            answer = client.post(path, json={"feedback": []}, headers=auth)
            assert answer.status_code == 401, (path, auth, answer.text)


def test_metrics_need_the_scraper_s_bearer_token_and_health_is_open(world: AccessWorld) -> None:
    client = TestClient(FACTORIES["healthy_homes.ops.app.create_ops_app"](world).app)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)  # open either way
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        assert client.get("/metrics", headers=auth).status_code == 401, auth
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and "# TYPE" in scraped.text
