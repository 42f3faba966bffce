"""A patient outside every housing service's area, in real headless Chromium.

The pop-up opens as usual, but says plainly that no housing service covers the
address and what the clinician can do instead; the consent and decline buttons are
not offered, and nothing is recorded as consent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlmodel import select

from healthy_homes.store.models import ConsentRecord, FlagStatus
from tests.browser.conftest import _missing, require
from tests.browser.page import PopupPage
from tests.web.routing_world import NOWHERE_POSTCODE, build_routing_world, move
from tests.web.world import PopupWorld

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PopupWorld]:
    require(_missing())
    world, _ = build_routing_world(tmp_path_factory.mktemp("popup-routing-browser"))
    world.start_popup()
    try:
        yield world
    finally:
        world.stop()


def _visible(page: PopupPage, element_id: str) -> bool:
    return bool(page.js("return !document.getElementById(arguments[0]).hidden", element_id))


def test_outside_every_area_the_offer_is_not_made(browser: Any, routed: PopupWorld) -> None:
    page = PopupPage(browser, routed.url).open()
    patient = routed.take_patient()
    move(routed, patient, NOWHERE_POSTCODE)
    routed.set_status(routed.book(patient), "arrived")

    page.wait_for_dialog()
    page.wait(lambda d: _visible(page, "routing-none"))
    callout = page.text("routing-none")
    assert "No housing service covers this address" in callout
    assert "No housing service covers postcode district ZE2" in page.text("routing-none-text")
    assert "local council" in callout
    assert NOWHERE_POSTCODE not in callout
    assert not _visible(page, "routing-to")
    for offer in ("Patient consents — refer", "Patient declines"):
        with pytest.raises(AssertionError):
            page.button(offer)
    page.wait(lambda d: "No housing service covers this address" in page.text("announcer"))

    # What the clinician can do instead: record why the referral was not offered.
    page.button("Not appropriate for this patient").click()
    page.wait_for_panel("not-appropriate")
    page.js(
        "document.getElementById('not-appropriate-reason').value = arguments[0]",
        "Outside every housing service's area",
    )
    page.button("Record not appropriate").click()
    page.wait_for_panel("done")
    flag = routed.flag_of(patient)
    assert flag.outcome == FlagStatus.NOT_APPROPRIATE
    with routed.db.session() as session:
        consents = session.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient))
        assert list(consents) == []


def test_the_offer_names_the_service_and_the_referral_shows_in_referrals_you_made(
    browser: Any, routed: PopupWorld
) -> None:
    page = PopupPage(browser, routed.url).open()
    patient = routed.take_patient()  # inside North's district
    routed.set_status(routed.book(patient), "arrived")

    page.wait_for_dialog()
    page.wait(lambda d: _visible(page, "routing-to"))
    assert "North Safe and Healthy Homes" in page.text("routing-to")
    page.button("Patient consents — refer").click()
    page.wait_for_panel("consent")
    assert "North Safe and Healthy Homes" in page.text("consent-wording")
    page.wait(lambda d: "NHS number" in page.text("preview-consent"))
    page.button("Confirm consent and send referral").click()
    page.wait_for_panel("done")
    assert "North Safe and Healthy Homes" in page.text("done-message")

    browser.get(routed.url + "/referrals")
    page.wait(lambda d: d.find_elements(By.ID, "referrals-table"))
    rows = page.js(
        "return [...document.querySelectorAll('#referrals-table tbody tr')].map(r =>"
        " Object.fromEntries([...r.querySelectorAll('td[data-field]')]"
        ".map(c => [c.dataset.field, c.textContent.trim()])))"
    )
    assert {
        "service": "North Safe and Healthy Homes",
        "acknowledged": "No",
        "status": "Sent; waiting for the housing team",
    }.items() <= rows[0].items()
    assert rows[0]["sent"] != "Not sent"
