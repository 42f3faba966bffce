"""The pop-up app over real HTTP, without a browser: sign-in, CSRF, actions, the stream.

The practice and housing services are mock FHIR servers on loopback ports, and the
connector runs for real; these keep the pop-up's server side covered on machines
without Chromium.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import SystemClock
from healthy_homes.consent.wording import CURRENT_VERSION
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.popup.watch import arrivals
from healthy_homes.store.models import ConsentRecord, FlagStatus
from healthy_homes.web.identity import ProxyHeaderIdentity
from tests.web.world import LONDON, PopupWorld, build_world, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PopupWorld]:
    built = build_world(tmp_path_factory.mktemp("popup-server"))
    # Signed in by the practice's trusted reverse proxy (loopback here): it names a
    # user who must exist here, and our table gives the role.
    built.add_user("u42", "Dr Pat Proxy")
    built.start_popup(ProxyHeaderIdentity())
    try:
        yield built
    finally:
        built.stop()


SIGNED_IN = {"X-Remote-User": "u42", "X-Remote-User-Name": "Dr Pat Proxy"}


class Browserless:
    """A signed-in page session: cookie, CSRF token, and JSON posts."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers=SIGNED_IN, timeout=10)
        page = self.http.get("/")
        assert page.status_code == 200
        found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert found is not None
        self.token = found.group(1)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.token})


@pytest.fixture
def session(world: PopupWorld) -> Iterator[Browserless]:
    client = Browserless(world.url)
    yield client
    client.http.close()


def _arrived_flag(world: PopupWorld) -> tuple[str, str]:
    patient = world.take_patient()
    world.set_status(world.book(patient), "arrived")
    return patient, world.flag_of(patient).id


def test_nobody_signed_in_gets_401(world: PopupWorld) -> None:
    page = httpx.get(world.url + "/")
    assert page.status_code == 401 and "Sign in" in page.text
    assert httpx.get(world.url + "/events").status_code == 401
    browser = httpx.get(world.url + "/", headers={"Accept": "text/html"})
    assert browser.status_code == 303 and browser.headers["location"] == "/sign-in?next=%2F"
    unknown = {"X-Remote-User": "nobody-here", "X-Remote-User-Name": "Dr No"}
    assert httpx.get(world.url + "/", headers=unknown).status_code == 401  # not a user here


def test_actions_without_the_csrf_token_are_refused(
    world: PopupWorld, session: Browserless
) -> None:
    patient, flag_id = _arrived_flag(world)
    body = {"wording_version": CURRENT_VERSION}
    refused = session.http.post(f"/api/flags/{flag_id}/consent", json=body)
    assert refused.status_code == 403
    assert world.flag_of(patient).outcome is None
    assert session.post(f"/api/flags/{flag_id}/shown").json() == {"status": "shown"}


def test_consent_decline_and_snooze_over_the_api(world: PopupWorld, session: Browserless) -> None:
    patient, flag_id = _arrived_flag(world)
    stale = session.post(f"/api/flags/{flag_id}/consent", {"wording_version": "1999-1"})
    assert stale.status_code == 409 and "wording" in stale.json()["error"]
    risky = session.post(
        f"/api/flags/{flag_id}/consent",
        {"wording_version": CURRENT_VERSION, "form": {"staff_risks": "dog"}},
    )
    assert risky.status_code == 400 and "consent" in risky.json()["error"]
    done = session.post(f"/api/flags/{flag_id}/consent", {"wording_version": CURRENT_VERSION})
    assert done.status_code == 200 and done.json()["sent"] is True
    assert world.flag_of(patient).outcome == FlagStatus.ACCEPTED
    again = session.post(f"/api/flags/{flag_id}/decline", {"reason": "no-visit"})
    assert again.status_code == 409  # already answered

    patient, flag_id = _arrived_flag(world)
    bad = session.post(f"/api/flags/{flag_id}/decline", {"reason": "because"})
    assert bad.status_code == 400
    ok = session.post(f"/api/flags/{flag_id}/decline", {"reason": "not-now", "detail": " busy  "})
    assert ok.status_code == 200
    assert world.flag_of(patient).outcome_reason == "Not the right time: busy"

    patient, flag_id = _arrived_flag(world)
    assert session.post(f"/api/flags/{flag_id}/snooze").status_code == 200
    assert world.flag_of(patient).status == FlagStatus.SNOOZED
    assert session.post("/api/flags/no-such-flag/snooze").status_code == 409


def _listed(session: Browserless, flag_id: str) -> bool:
    return f'data-flag-id="{flag_id}"' in session.http.get("/").text


def _wait_until_listed(session: Browserless, flag_id: str) -> None:
    deadline = time.monotonic() + 10
    while not _listed(session, flag_id):
        assert time.monotonic() < deadline, "the arrival never reached the page's list"
        time.sleep(0.05)


def test_written_consent_is_recorded_as_written(world: PopupWorld, session: Browserless) -> None:
    patient, flag_id = _arrived_flag(world)
    body = {"wording_version": CURRENT_VERSION, "method": "in-blood"}
    assert session.post(f"/api/flags/{flag_id}/consent", body).status_code == 400
    body["method"] = "written"
    assert session.post(f"/api/flags/{flag_id}/consent", body).status_code == 200
    with world.db.session() as db:
        [consent] = db.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient))
    assert consent.decision == "given" and consent.method == "written"
    assert world.flag_of(patient).outcome == FlagStatus.ACCEPTED


@pytest.mark.parametrize(
    ("action", "body", "outcome", "reason"),
    [
        ("not-appropriate", {"reason": "  In a care  home "}, "not-appropriate", "In a care home"),
        ("not-appropriate", {}, "not-appropriate", None),
        ("dismiss", {}, "dismissed", None),
    ],
)
def test_not_appropriate_and_dismiss_over_the_api(
    world: PopupWorld,
    session: Browserless,
    action: str,
    body: dict[str, Any],
    outcome: str,
    reason: str | None,
) -> None:
    patient, flag_id = _arrived_flag(world)
    _wait_until_listed(session, flag_id)
    refused = session.http.post(f"/api/flags/{flag_id}/{action}", json=body)
    assert refused.status_code == 403  # no CSRF token
    assert world.flag_of(patient).outcome is None and _listed(session, flag_id)

    done = session.post(f"/api/flags/{flag_id}/{action}", body)
    assert done.status_code == 200 and done.json()["message"]
    flag = world.flag_of(patient)
    assert flag.outcome == FlagStatus(outcome) and flag.outcome_reason == reason
    assert not _listed(session, flag_id)  # gone from the list, and stays gone
    # A retry is safe and changes nothing; another answer is refused.
    assert session.post(f"/api/flags/{flag_id}/{action}", body).status_code == 200
    assert world.flag_of(patient).outcome == FlagStatus(outcome)
    assert session.post(f"/api/flags/{flag_id}/decline", {"reason": "no-visit"}).status_code == 409
    with world.db.session() as db:
        assert db.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient)).all() == []


def test_not_appropriate_reason_is_bounded(world: PopupWorld, session: Browserless) -> None:
    patient, flag_id = _arrived_flag(world)
    long = session.post(f"/api/flags/{flag_id}/not-appropriate", {"reason": "x" * 401})
    assert long.status_code == 400
    assert world.flag_of(patient).outcome is None


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name:
            yield name, json.loads(line.removeprefix("data: "))
            name = None


def test_the_event_stream_announces_arrivals_and_resolutions(world: PopupWorld) -> None:
    patient = world.take_patient()
    appointment = world.book(patient)
    with (
        httpx.Client(base_url=world.url, headers=SIGNED_IN, timeout=10) as http,
        http.stream("GET", "/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        events = _events(response.iter_lines())
        name, snapshot = next(events)
        assert name == "snapshot"
        flag_id = world.flag_of(patient).id
        assert flag_id not in {p["flagId"] for p in snapshot["prompts"]}
        world.set_status(appointment, "arrived")
        # Other flagged patients may already be in the waiting room today: their arrivals
        # can be announced first when the watcher's first poll races the snapshot.
        name, prompt = next((n, d) for n, d in events if n == "arrived" and d["flagId"] == flag_id)
        assert set(prompt) == {
            "flagId",
            "name",
            "birthDate",
            "time",
            "status",
            "reasons",
            "priority",
        }  # no patient or appointment ids leave for the browser
        assert prompt["status"] == "arrived" and prompt["time"] == "12:00"
        world.set_status(appointment, "fulfilled")  # the patient has gone
        name, gone = next((n, d) for n, d in events if n == "resolved" and d["flagId"] == flag_id)
        assert gone == {"flagId": flag_id}


def test_the_practice_server_going_away_is_reported(
    tmp_path: Path,
) -> None:
    built = build_world(tmp_path, patients=60, seed=3)
    built.start_popup()
    try:
        built.practice.stop()
        with httpx.Client(base_url=built.url, timeout=10) as http:
            sign_in(http)
            with http.stream("GET", "/events") as response:
                events = _events(response.iter_lines())
                health = next(d for n, d in events if n == "status" and not d["ok"])
        assert "not answering" in health["message"]
    finally:
        built.stop()


async def test_arrivals_come_from_the_appointment_watch_while_it_is_fresh(
    world: PopupWorld,
) -> None:
    patient = world.take_patient()
    flag_id = world.flag_of(patient).id
    world.set_status(world.book(patient, watch=False), "arrived")  # booked after the last watch
    clock, practice = SystemClock(), "A12345"
    async with FhirClient(world.practice.base_url) as client:
        fresh = await arrivals(client, world.db, practice, clock, LONDON)
        assert flag_id not in fresh  # only appointments the watch knows are read back
        stale = await arrivals(client, world.db, practice, clock, LONDON, watch_max_age=timedelta())
        assert flag_id in stale  # no trustworthy watch: today's arrivals are searched
        await asyncio.to_thread(world.sync)
        watched = await arrivals(client, world.db, practice, clock, LONDON)
    assert watched[flag_id].status == "arrived" and watched[flag_id].patient_id == patient
