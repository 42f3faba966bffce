"""Routing before consent, over real HTTP: the pop-up names the service, or says there is none.

Two housing services split the area (``tests/web/routing_world.py``); the connector
and the practice are real, and patients move by FHIR updates to their address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.connector.closed_loop import ClosedLoop
from healthy_homes.consent.wording import CURRENT_VERSION
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.store.models import ConsentRecord, Referral
from tests.web.routing_world import (
    COAST,
    COAST_POSTCODE,
    NORTH,
    NOWHERE_POSTCODE,
    build_routing_world,
    move,
)
from tests.web.world import CLINICIAN, PopupWorld, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PopupWorld, str]]:
    world, district = build_routing_world(tmp_path_factory.mktemp("popup-routing"))
    world.start_popup()
    try:
        yield world, district
    finally:
        world.stop()


class Page:
    """A signed-in clinician's page: the CSRF token, and JSON posts."""

    def __init__(self, world: PopupWorld, username: str = CLINICIAN.user_id) -> None:
        self.http = httpx.Client(base_url=world.url, timeout=10)
        sign_in(self.http, username)
        found = re.search(r'name="csrf-token" content="([^"]+)"', self.http.get("/").text)
        assert found is not None
        self.token = found.group(1)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.token})


@pytest.fixture
def page(routed: tuple[PopupWorld, str]) -> Iterator[Page]:
    made = Page(routed[0])
    yield made
    made.http.close()


def _flag(world: PopupWorld, postcode: str | None = None) -> tuple[str, str]:
    patient = world.take_patient()
    if postcode is not None:
        move(world, patient, postcode)
    return patient, world.flag_of(patient).id


def _consents(world: PopupWorld, patient: str) -> list[ConsentRecord]:
    with world.db.session() as session:
        return list(session.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient)))


def test_the_offer_names_the_service_for_the_patients_area(routed, page: Page) -> None:
    world, _ = routed
    patient, flag_id = _flag(world)
    routing = page.post(f"/api/flags/{flag_id}/route").json()
    assert routing["canRefer"] is True and routing["outcome"] == "routed"
    assert routing["sentTo"] == "North Safe and Healthy Homes"
    assert "North Safe and Healthy Homes" in routing["wording"]
    preview = page.post(f"/api/flags/{flag_id}/preview").json()
    assert dict(preview["lines"])["Sent to"] == "North Safe and Healthy Homes"

    done = page.post(f"/api/flags/{flag_id}/consent", {"wording_version": CURRENT_VERSION})
    assert done.status_code == 200, done.text
    assert done.json()["sent"] is True and "North Safe and Healthy Homes" in done.json()["message"]
    with world.db.session() as session:
        [referral] = session.exec(select(Referral).where(Referral.patient_id == patient)).all()
    assert referral.housing_service_id == NORTH
    [request] = world.search(
        world.housing, "ServiceRequest", identifier=f"{HH_REFERRAL_ID}|{referral.id}"
    )
    assert request["performer"][0]["display"] == "North Safe and Healthy Homes"


def test_a_private_home_in_the_coast_district_goes_to_the_coast_service(routed, page: Page) -> None:
    world, _ = routed
    patient, flag_id = _flag(world, COAST_POSTCODE)
    # Coast takes private homes only: the tenure must be asked, but the offer stands.
    unknown = page.post(f"/api/flags/{flag_id}/route").json()
    assert unknown["outcome"] == "tenure-needed"
    assert unknown["canRefer"] is False and unknown["canAsk"] is True
    assert "Ask the patient" in unknown["message"]

    social = {"form": {"tenure": "social"}}
    refused = page.post(f"/api/flags/{flag_id}/preview", social).json()
    assert refused["lines"] == [] and refused["routing"]["outcome"] == "tenure-not-taken"
    assert "landlord" in refused["routing"]["message"]
    blocked = page.post(
        f"/api/flags/{flag_id}/consent", {"wording_version": CURRENT_VERSION, **social}
    )
    assert blocked.status_code == 409 and "does not take social housing" in blocked.json()["error"]
    assert _consents(world, patient) == []

    private = {"form": {"tenure": "private-rented"}}
    preview = page.post(f"/api/flags/{flag_id}/preview", private).json()
    assert preview["routing"]["sentTo"] == "Coast Private Sector Housing"
    assert dict(preview["lines"])["Sent to"] == "Coast Private Sector Housing"
    done = page.post(
        f"/api/flags/{flag_id}/consent", {"wording_version": CURRENT_VERSION, **private}
    )
    assert done.status_code == 200, done.text
    [consent] = _consents(world, patient)
    with world.db.session() as session:
        [referral] = session.exec(select(Referral).where(Referral.patient_id == patient)).all()
    assert referral.housing_service_id == COAST
    assert referral.consent_id == consent.id


def test_outside_every_area_no_consent_can_be_recorded(routed, page: Page) -> None:
    world, _ = routed
    patient, flag_id = _flag(world, NOWHERE_POSTCODE)
    routing = page.post(f"/api/flags/{flag_id}/route").json()
    assert routing["outcome"] == "out-of-area"
    assert routing["canRefer"] is False and routing["canAsk"] is False
    assert routing["sentTo"] is None and routing["wording"] is None
    assert "No housing service covers postcode district ZE2" in routing["message"]
    assert "local council" in routing["message"]
    assert NOWHERE_POSTCODE not in routing["message"]  # the district only, never the postcode

    preview = page.post(f"/api/flags/{flag_id}/preview").json()
    assert preview["lines"] == [] and preview["routing"]["outcome"] == "out-of-area"
    refused = page.post(f"/api/flags/{flag_id}/consent", {"wording_version": CURRENT_VERSION})
    assert refused.status_code == 409
    assert "No housing service covers postcode district ZE2" in refused.json()["error"]
    assert _consents(world, patient) == []
    assert world.flag_of(patient).outcome is None
    # What the clinician can do instead still works.
    assert (
        page.post(
            f"/api/flags/{flag_id}/not-appropriate", {"reason": "outside every housing area"}
        ).status_code
        == 200
    )


def _rows(html: str) -> dict[str, dict[str, str]]:
    """The 'Referrals you made' table: referral id -> field -> text."""
    rows: dict[str, dict[str, str]] = {}
    for rid, body in re.findall(r'data-referral-id="([^"]+)">(.*?)</tr>', html, re.S):
        cells = dict(re.findall(r'<td[^>]*data-field="(\w+)"[^>]*>(.*?)</td>', body, re.S))
        rows[rid] = {k: " ".join(re.sub(r"<[^>]+>", " ", v).split()) for k, v in cells.items()}
        rows[rid]["overdue"] = str('data-field="overdue"' in body)
    return rows


def _consented(world: PopupWorld, page: Page) -> str:
    patient, flag_id = _flag(world)
    done = page.post(f"/api/flags/{flag_id}/consent", {"wording_version": CURRENT_VERSION})
    assert done.status_code == 200 and done.json()["sent"] is True
    with world.db.session() as session:
        [referral] = session.exec(select(Referral).where(Referral.patient_id == patient)).all()
    return referral.id


def _housing_moves(world: PopupWorld, referral_id: str, status: str) -> None:
    """The housing service moves its Task (a FHIR update on its server)."""
    [task] = world.search(world.housing, "Task", identifier=f"{HH_REFERRAL_ID}|{referral_id}")
    with httpx.Client(base_url=world.housing.base_url + "/", timeout=10) as http:
        http.put(f"Task/{task['id']}", json={**task, "status": status}).raise_for_status()


async def test_referrals_you_made_show_service_sent_acknowledgement_status_and_overdue(
    routed, page: Page
) -> None:
    world, _ = routed
    accepted, waiting = _consented(world, page), _consented(world, page)
    listed = _rows(page.http.get("/referrals").text)
    assert listed[waiting]["service"] == "North Safe and Healthy Homes"
    assert listed[waiting]["sent"] != "Not sent"
    assert listed[waiting]["acknowledged"] == "No"
    assert listed[waiting]["status"] == "Sent; waiting for the housing team"
    assert listed[waiting]["overdue"] == "False"

    # The housing team accepts one; weeks pass with no word on the other. The closed loop
    # (status polled back through the transport, deadlines checked) runs on its schedule.
    _housing_moves(world, accepted, "accepted")
    later = FixedClock(datetime.now(UTC) + timedelta(days=30))
    loop = ClosedLoop(world.db, world.settings.housing_services, {}, later)
    try:
        report = await loop.run_once()
    finally:
        await loop.aclose()
    assert (accepted, "accepted") in [(c.referral_id, c.new) for c in report.changes]
    assert waiting in [a.subject for a in report.alerts]

    async with httpx.AsyncClient(base_url=world.url, cookies=page.http.cookies) as http:
        html = (await http.get("/referrals")).text
    listed = _rows(html)
    assert listed[accepted]["acknowledged"] == "Yes"
    assert listed[accepted]["status"] == "Accepted by the housing team"
    assert listed[accepted]["overdue"] == "False"
    assert listed[waiting]["acknowledged"] == "No"
    assert listed[waiting]["overdue"] == "True"
    assert listed[waiting]["status"].startswith("Sent; waiting for the housing team Overdue")
    assert 'id="overdue-summary"' in html


def test_another_clinician_sees_only_their_own_referrals(routed, page: Page) -> None:
    world, _ = routed
    mine = _consented(world, page)
    assert mine in _rows(page.http.get("/referrals").text)
    world.add_user("dr.other", "Dr Other Clinician")
    with httpx.Client(base_url=world.url, timeout=10) as other:
        sign_in(other, "dr.other")
        theirs = other.get("/referrals")
    assert theirs.status_code == 200 and _rows(theirs.text) == {}
    assert 'id="no-referrals"' in theirs.text


def _recorded_by(world: PopupWorld, referral_id: str) -> str:
    """The name on the consent a referral rests on."""
    with world.db.session() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        consent = session.get(ConsentRecord, referral.consent_id)
    assert consent is not None
    return consent.recorded_by


def test_two_clinicians_with_one_name_each_see_only_their_own_referrals(routed, page: Page) -> None:
    """Matched by signed-in account, not display name (the name is on both consents)."""
    world, _ = routed
    world.add_user("dr.tess.2", CLINICIAN.display_name)
    namesake = Page(world, "dr.tess.2")
    try:
        mine, theirs = _consented(world, page), _consented(world, namesake)
        assert _recorded_by(world, mine) == _recorded_by(world, theirs) == CLINICIAN.display_name
        listed_mine = _rows(page.http.get("/referrals").text)
        listed_theirs = _rows(namesake.http.get("/referrals").text)
        assert mine in listed_mine and theirs not in listed_mine
        assert theirs in listed_theirs and mine not in listed_theirs

        # A referral filed under nobody (made before migration 0013) is nobody's to list,
        # though its consent carries the clinician's display name.
        with world.db.session() as session:
            row = session.get(Referral, mine)
            assert row is not None
            row.referred_by_user = None
            session.add(row)
        assert mine not in _rows(page.http.get("/referrals").text)
    finally:
        namesake.http.close()
