"""Each role against each page and action: allowed, or refused (403; 404 for another team's ids).

Sessions are minted through the account store exactly as the sign-in form does, and
the cookie is set by name, so a role's session can be tried at an app that would not
even let it sign in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from starlette.testclient import TestClient

from healthy_homes.store.models import HousingReferral
from tests.access.apps import FACTORIES, NOW, AccessWorld, build_world, csrf_headers
from tests.delivery.seed import enqueue

POPUP = "healthy_homes.flags.popup.app.create_popup_app"
OUTBOX = "healthy_homes.connector.delivery.pages.create_outbox_app"
HOUSING = "healthy_homes.housing.app.create_housing_app"
REFUSED = {401, 403}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccessWorld]:
    built = build_world(tmp_path_factory.mktemp("roles"))
    with built.db.session() as session:
        for team in ("north", "south"):
            session.add(
                HousingReferral(
                    id=f"{team}-ref",
                    team_id=team,
                    referral_identifier=f"r-{team}",
                    dataset={"given_name": "Ada", "family_name": "Testperson"},
                    received_at=NOW,
                    updated_at=NOW,
                )
            )
    yield built
    built.db.dispose()


@pytest.fixture(scope="module")
def clients(world: AccessWorld) -> Iterator[dict[str, TestClient]]:
    """One running client per app (the pop-up's lifespan runs; its FHIR server is absent)."""
    with ExitStack() as stack:
        running = {}
        for name in (POPUP, OUTBOX, HOUSING):
            built = FACTORIES[name](world)
            client = TestClient(built.app, follow_redirects=False, raise_server_exceptions=False)
            running[name] = stack.enter_context(client)
            running[name].cookie_name = built.cookie  # type: ignore[attr-defined]
        yield running


def _as(world: AccessWorld, client: TestClient, username: str, method: str, path: str) -> int:
    token = world.token_for(username)
    headers = csrf_headers()
    headers["Cookie"] += f"; {client.cookie_name}={token}"  # type: ignore[attr-defined]
    headers["Accept"] = "application/json"
    data = {"per_week": "4", "reason": "test", "text": "called"}
    if method == "GET":
        return client.get(path, headers=headers).status_code
    return client.post(path, headers=headers, data=data).status_code


# (app, method, path) -> the users allowed; everyone else in USERS must be refused.
MATRIX = [
    (POPUP, "GET", "/", {"clinician"}),
    (POPUP, "GET", "/referrals", {"clinician"}),
    (POPUP, "GET", "/events", set()),  # a stream: checked for refusals only (below)
    (POPUP, "POST", "/api/flags/no-such-flag/shown", {"clinician"}),
    (OUTBOX, "GET", "/referrals/outbox", {"admin"}),
    (OUTBOX, "POST", "/referrals/outbox/no-such-referral/retry", {"admin"}),
    (HOUSING, "GET", "/", {"officer", "manager", "south.officer"}),
    (HOUSING, "GET", "/referrals/north-ref", {"officer", "manager"}),
    (HOUSING, "POST", "/referrals/north-ref/contact", {"officer", "manager"}),
    (HOUSING, "GET", "/capacity", {"manager"}),
    (HOUSING, "POST", "/capacity", {"manager"}),
    (OUTBOX, "GET", "/users", {"admin"}),
    (OUTBOX, "POST", "/users/clinician/enable", {"admin"}),
    (HOUSING, "GET", "/users", {"manager"}),
    (HOUSING, "POST", "/users/officer/enable", {"manager"}),
]
USERS = ["clinician", "admin", "officer", "manager", "south.officer", "other.clinician"]


@pytest.mark.parametrize(("app", "method", "path", "allowed"), MATRIX)
def test_role_matrix(
    world: AccessWorld,
    clients: dict[str, TestClient],
    app: str,
    method: str,
    path: str,
    allowed: set[str],
) -> None:
    client = clients[app]
    answers = {}
    for user in USERS:
        if path == "/events" and user == "clinician":
            continue  # an endless stream; the page's own tests read it
        answers[user] = _as(world, client, user, method, path)
    for user, status in answers.items():
        if user in allowed:
            assert status not in REFUSED, (user, method, path, status)
        elif "/referrals/north-ref" in path and user == "south.officer":
            assert status == 404, (user, path, status)  # another team's id: as if absent
        else:
            assert status == 403, (user, method, path, status)


def test_allowed_pages_really_answer(world: AccessWorld, clients: dict[str, TestClient]) -> None:
    """'Not refused' above is a real page here, not an error that happens not to be 403."""
    assert _as(world, clients[POPUP], "clinician", "GET", "/") == 200
    assert _as(world, clients[POPUP], "clinician", "GET", "/referrals") == 200
    assert _as(world, clients[OUTBOX], "admin", "GET", "/referrals/outbox") == 200
    assert _as(world, clients[HOUSING], "officer", "GET", "/referrals/north-ref") == 200
    assert _as(world, clients[HOUSING], "manager", "GET", "/capacity") == 200


def test_a_housing_officer_guessing_another_team_s_ids_gets_404(
    world: AccessWorld, clients: dict[str, TestClient]
) -> None:
    housing = clients[HOUSING]
    for path in ("/referrals/north-ref", "/referrals/no-such-referral"):
        assert _as(world, housing, "south.officer", "GET", path) == 404
    for action in ("accept", "decline", "contact", "visit", "outcome"):
        path = f"/referrals/north-ref/{action}"
        assert _as(world, housing, "south.officer", "POST", path) == 404
    with world.db.session() as session:
        row = session.get(HousingReferral, "north-ref")
        assert row is not None and row.status == "received"


def test_a_practice_admin_sees_and_acts_on_their_own_practice_only(
    world: AccessWorld, clients: dict[str, TestClient]
) -> None:
    from healthy_homes.accounts.users import add_user
    from healthy_homes.web.access import Role

    with world.db.session() as session:
        add_user(
            session,
            username="other.admin",
            display_name="Other Admin",
            role=Role.PRACTICE_ADMIN,
            organisation="B99999",
            password="correct horse battery staple",
            now=NOW,
        )
    [referral] = enqueue(world.db, 1, NOW)  # practice A12345's, waiting in the outbox
    outbox = clients[OUTBOX]
    assert referral in outbox_page(world, outbox, "admin")
    assert referral not in outbox_page(world, outbox, "other.admin")
    cancel = f"/referrals/outbox/{referral}/cancel"
    assert _as(world, outbox, "other.admin", "POST", cancel) == 404  # as if it did not exist
    assert _as(world, outbox, "admin", "POST", cancel) == 303


def outbox_page(world: AccessWorld, client: TestClient, username: str) -> str:
    headers = {"Cookie": f"hh_admin_session={world.token_for(username)}"}
    page = client.get("/referrals/outbox?state=pending", headers=headers)
    assert page.status_code == 200
    return page.text
