"""'Referrals you made' shows what the housing team said, through a real closed loop.

The practice refers to a housing team in the Healthy Homes inbox (its FHIR base, with
its bearer token); an officer declines one referral for "No capacity" and completes
another with outcomes on the inbox's own pages; the connector's closed loop polls the
Tasks back; the clinician's page shows the reason and the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import SystemClock
from healthy_homes.config.models import Settings
from healthy_homes.connector.closed_loop import ClosedLoop
from healthy_homes.housing.workflow import OUTCOMES
from healthy_homes.store.models import HousingReferral, Referral
from tests.housing.test_pages_http import _sign_in
from tests.housing.world import Inbox, start_inbox
from tests.web.test_popup_routing import Page, _consented, _rows
from tests.web.world import PopupWorld, build_world

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PopupWorld, Inbox]]:
    tmp: Path = tmp_path_factory.mktemp("popup-inbox")
    inbox = start_inbox(tmp)
    world = build_world(tmp, patients=120)
    data = world.settings.model_dump(mode="json")
    data["housing_services"][0] |= {
        "name": "North Healthy Homes",
        "fhir_base_url": inbox.base("north"),
        "auth": {"kind": "bearer", "token": inbox.tokens["north"]},
    }
    world.settings = Settings.model_validate(data)
    world.start_popup()
    try:
        yield world, inbox
    finally:
        world.stop()
        inbox.stop()


def _queued(inbox: Inbox, referral_id: str) -> HousingReferral:
    with inbox.db.session() as session:
        query = select(HousingReferral).where(HousingReferral.referral_identifier == referral_id)
        return session.exec(query).one()


async def test_a_decline_reason_and_an_outcome_reach_the_clinicians_page(linked) -> None:
    world, inbox = linked
    page = Page(world)
    declined, completed = _consented(world, page), _consented(world, page)

    officer, token = _sign_in(inbox, "north")
    refused = _queued(inbox, declined)
    answer = officer.post(
        f"/referrals/{refused.id}/decline",
        data={"csrf_token": token, "reason": "no-capacity"},
    )
    assert answer.status_code == 303, answer.text
    done = _queued(inbox, completed)
    assert officer.post(f"/referrals/{done.id}/accept", data={"csrf_token": token}).is_redirect
    outcomes = list(OUTCOMES)[:2]
    closed = officer.post(
        f"/referrals/{done.id}/outcome",
        data={"csrf_token": token, "outcome": outcomes, "note": ""},
    )
    assert closed.status_code == 303, closed.text
    officer.close()

    loop = ClosedLoop(world.db, world.settings.housing_services, {}, SystemClock())
    try:
        report = await loop.run_once()
    finally:
        await loop.aclose()
    moved = {(c.referral_id, c.new) for c in report.changes}
    assert {(declined, "rejected"), (completed, "completed")} <= moved

    with world.db.session() as session:
        stored = session.get(Referral, declined)
    assert stored is not None and stored.status_reason == "No capacity"

    async with httpx.AsyncClient(base_url=world.url, cookies=page.http.cookies) as http:
        listed = _rows((await http.get("/referrals")).text)
    assert listed[declined]["status"] == "Declined by the housing team Reason: No capacity"
    expected = "; ".join(OUTCOMES[o] for o in outcomes)
    assert listed[completed]["status"] == f"Completed by the housing team Outcome: {expected}"
    page.http.close()
