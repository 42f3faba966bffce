"""The officers' pages over HTTP: sign-in, sessions, CSRF, and one team never seeing another's."""

from __future__ import annotations

import re

import httpx
from sqlmodel import select

from healthy_homes.accounts.passwords import hash_password, verify_password
from healthy_homes.store.access_models import UserSession
from healthy_homes.store.models import HousingReferral
from tests.housing.world import MANAGERS, OFFICERS, PASSWORD, Inbox, dataset, referral

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _browser(inbox: Inbox) -> httpx.Client:
    # Accept: text/html as a browser navigating sends, so refusals redirect to sign-in.
    headers = {"Accept": "text/html"}
    return httpx.Client(base_url=inbox.url, timeout=10, follow_redirects=False, headers=headers)


def _token(page: httpx.Response) -> str:
    found = TOKEN.search(page.text)
    assert found, "the page carries a CSRF token in its forms"
    return found.group(1)


def _sign_in(inbox: Inbox, team: str, *, manager: bool = False) -> tuple[httpx.Client, str]:
    client = _browser(inbox)
    token = _token(client.get("/sign-in"))
    username = (MANAGERS if manager else OFFICERS)[team]
    done = client.post(
        "/sign-in", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert done.status_code == 303 and done.headers["location"] == "/"
    return client, _token(client.get("/"))


def _received(inbox: Inbox, team: str, referral_id: str, n: int) -> HousingReferral:
    assert inbox.send(team, referral(referral_id, dataset(n))).status_code == 200
    with inbox.db.session() as session:
        query = select(HousingReferral).where(HousingReferral.referral_identifier == referral_id)
        return session.exec(query.where(HousingReferral.team_id == team)).one()


def test_passwords_are_scrypt_hashes() -> None:
    stored = hash_password("a long enough password", n=2**14)
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("a long enough password", stored)
    assert not verify_password("a long enough passwore", stored)


def test_sign_in_sets_a_strict_http_only_session_cookie_stored_only_as_a_hash(
    inbox: Inbox,
) -> None:
    client = _browser(inbox)
    token = _token(client.get("/sign-in"))
    wrong = client.post(
        "/sign-in", data={"username": "olive.north", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 400 and "username or password is not right" in wrong.text
    done = client.post(
        "/sign-in", data={"username": "olive.north", "password": PASSWORD, "csrf_token": token}
    )
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("hh_housing_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    value = client.cookies["hh_housing_session"]
    with inbox.db.session() as session:
        ids = [s.id for s in session.exec(select(UserSession)).all()]
    assert len(ids) == 1 and value not in ids  # only its SHA-256 is kept


def test_no_session_means_no_page_and_no_action(inbox: Inbox) -> None:
    row = _received(inbox, "north", "ref-10", 10)
    client = _browser(inbox)
    assert client.get("/").headers["location"] == "/sign-in?next=%2F"
    assert client.get(f"/referrals/{row.id}").headers["location"].startswith("/sign-in?next=")
    token = _token(client.get("/sign-in"))  # a valid CSRF token, but nobody signed in
    refused = client.post(f"/referrals/{row.id}/accept", data={"csrf_token": token})
    assert refused.status_code == 401
    assert inbox.task("north", "ref-10")["status"] == "received"


def test_posts_without_the_csrf_token_are_refused(inbox: Inbox) -> None:
    row = _received(inbox, "north", "ref-11", 11)
    client, token = _sign_in(inbox, "north")

    missing = client.post(f"/referrals/{row.id}/accept", data={})
    wrong = ("y" if token[0] == "x" else "x") + token[1:]  # never the token itself
    forged = client.post(f"/referrals/{row.id}/accept", data={"csrf_token": wrong})
    cross_site = client.post(
        f"/referrals/{row.id}/accept",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert [r.status_code for r in (missing, forged, cross_site)] == [403, 403, 403]
    assert inbox.task("north", "ref-11")["status"] == "received"

    ok = client.post(f"/referrals/{row.id}/accept", data={"csrf_token": token})
    assert ok.status_code == 303
    assert inbox.task("north", "ref-11")["status"] == "accepted"


def test_another_team_s_referral_is_404_to_read_and_to_act_on(inbox: Inbox) -> None:
    theirs = _received(inbox, "south", "ref-12", 12)
    client, token = _sign_in(inbox, "north")

    assert client.get(f"/referrals/{theirs.id}").status_code == 404
    assert client.get("/referrals/no-such-id").status_code == 404
    act = client.post(f"/referrals/{theirs.id}/accept", data={"csrf_token": token})
    assert act.status_code == 404
    queue = client.get("/")
    assert theirs.id not in queue.text and "Testperson12" not in queue.text
    assert inbox.task("south", "ref-12")["status"] == "received"


def test_decline_needs_a_reason_and_is_the_task_s_status_reason(inbox: Inbox) -> None:
    row = _received(inbox, "north", "ref-13", 13)
    client, token = _sign_in(inbox, "north")
    none = client.post(f"/referrals/{row.id}/decline", data={"csrf_token": token})
    assert none.headers["location"].endswith("?error=decline")
    assert inbox.task("north", "ref-13")["status"] == "received"
    client.post(f"/referrals/{row.id}/decline", data={"csrf_token": token, "reason": "no-capacity"})
    task = inbox.task("north", "ref-13")
    assert task["status"] == "rejected"
    assert task["statusReason"] == {"text": "No capacity"}


def test_patient_strings_are_escaped(inbox: Inbox) -> None:
    hostile = dataset(14, family_name="<script>alert(1)</script>")
    inbox.send("north", referral("ref-14", hostile))
    client, _ = _sign_in(inbox, "north")
    page = client.get("/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_a_form_s_null_origin_passes_only_when_the_browser_says_same_origin(
    inbox: Inbox,
) -> None:
    row = _received(inbox, "north", "ref-15", 15)
    client, token = _sign_in(inbox, "north")
    # Referrer-Policy no-referrer makes browsers send "Origin: null" on form posts.
    cross = client.post(
        f"/referrals/{row.id}/accept",
        data={"csrf_token": token},
        headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    same = client.post(
        f"/referrals/{row.id}/accept",
        data={"csrf_token": token},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 303
    assert inbox.task("north", "ref-15")["status"] == "accepted"
