"""Issue 5 acceptance, in real headless Chromium against the real pop-up app.

The practice is the mock FHIR server on a loopback port; an appointment becomes
"arrived" by a FHIR update, exactly as the practice system would make it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from healthy_homes.consent.wording import CURRENT_VERSION
from healthy_homes.store.models import ConsentRecord, FlagStatus, Referral, ReferralStatus
from tests.browser.page import PopupPage
from tests.web.world import CLINICIAN, PopupWorld

pytestmark = pytest.mark.e2e


@pytest.fixture
def page(browser: Any, world: PopupWorld) -> PopupPage:
    """The pop-up page, freshly loaded and listening."""
    return PopupPage(browser, world.url).open()


def _arrive(world: PopupWorld) -> tuple[str, dict[str, Any]]:
    patient = world.take_patient()
    appointment = world.book(patient)
    world.set_status(appointment, "arrived")
    return patient, appointment


def _consents(world: PopupWorld, patient: str) -> list[ConsentRecord]:
    with world.db.session() as session:
        return list(session.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient)))


def test_popup_appears_when_the_appointment_is_marked_arrived(
    page: PopupPage, world: PopupWorld
) -> None:
    patient = world.take_patient()
    appointment = world.book(patient)
    assert not page.dialog_open()

    world.set_status(appointment, "arrived")
    dialog = page.wait_for_dialog()

    assert page.js("return window.__loadedOnce") is True, "the page must not reload"
    assert dialog.get_attribute("aria-modal") == "true"
    assert page.js("return document.getElementById('prompt-dialog').matches(':modal')")
    assert page.panel() == "choose"
    flag = world.flag_of(patient)
    assert page.text("dialog-name").strip()
    reasons = page.js(
        "return [...document.querySelectorAll('#dialog-reasons li')].map(li => li.textContent)"
    )
    assert reasons == flag.reasons and reasons
    # Focus moved into the dialog, onto its heading; screen readers hear the arrival.
    assert page.active() | {"text": ""} == {
        "id": "choose-title",
        "tag": "H2",
        "text": "",
        "inDialog": True,
        "action": None,
    }
    page.wait(lambda d: "Housing referral prompt" in page.text("announcer"))
    assert page.js("return document.getElementById('announcer').getAttribute('aria-live')") == (
        "assertive"
    )
    # Opening the dialog is the flag being shown to the clinician.
    page.wait(lambda d: world.flag_of(patient).status == FlagStatus.SHOWN)

    # The clinician dismisses it: one click, recorded, and gone from the list.
    page.button("Dismiss").click()
    page.wait_for_panel("done")
    assert page.text("done-title") == "Prompt dismissed"
    assert world.flag_of(patient).outcome == FlagStatus.DISMISSED
    assert _consents(world, patient) == []
    assert (
        page.js("return document.querySelector(`[data-flag-id='${arguments[0]}']`)", flag.id)
        is None
    )


def test_consent_in_two_clicks_records_consent_and_sends_the_referral(
    page: PopupPage, world: PopupWorld
) -> None:
    patient, _ = _arrive(world)
    page.wait_for_dialog()

    page.button("Patient consents — refer").click()  # click 1
    page.wait_for_panel("consent")
    assert page.text("wording-version") == CURRENT_VERSION
    # Before confirming, the patient can see exactly what will be sent.
    page.wait(lambda d: "NHS number" in page.text("preview-consent"))
    page.button("Confirm consent and send referral").click()  # click 2
    page.wait_for_panel("done")
    assert page.text("done-title") == "Referral sent"

    [consent] = _consents(world, patient)
    assert consent.decision == "given" and consent.method == "verbal"
    assert consent.recorded_by == CLINICIAN.display_name
    assert consent.wording_version == CURRENT_VERSION
    # The FHIR Consent is in the practice record...
    fhir_consents = world.search(world.practice, "Consent", patient=f"Patient/{patient}")
    assert [c["status"] for c in fhir_consents] == ["active"]
    assert fhir_consents[0]["id"] == consent.fhir_consent_id
    # ...and the referral reached the housing service, once.
    with world.db.session() as session:
        [referral] = session.exec(select(Referral).where(Referral.patient_id == patient)).all()
    assert referral.status == ReferralStatus.SENT
    nhs = referral.dataset["nhs_number"]
    received = world.search(world.housing, "Patient", identifier=nhs)
    assert len(received) == 1
    assert world.flag_of(patient).outcome == FlagStatus.ACCEPTED
    # The prompt leaves the list once answered.
    page.button("Close").click()
    page.wait(lambda d: not page.dialog_open())
    assert (
        page.js(
            "return document.querySelector(`[data-flag-id='${arguments[0]}']`)",
            world.flag_of(patient).id,
        )
        is None
    )


def test_written_consent_and_form_answers_are_recorded_and_sent(
    page: PopupPage, world: PopupWorld
) -> None:
    patient, _ = _arrive(world)
    page.wait_for_dialog()
    page.button("Patient consents — refer").click()
    page.wait_for_panel("consent")
    page.driver.find_element("css selector", "input[name=tenure][value=social]").click()
    page.driver.find_element("css selector", "input[name=concerns][value=cold-or-damp]").click()
    page.wait(lambda d: "social housing" in page.text("preview-consent"))
    verbal = page.driver.find_element("id", "consent-method")
    assert verbal.get_attribute("value") == "verbal" and verbal.is_selected()  # the default
    page.driver.find_element("css selector", "input[name=consent_method][value=written]").click()
    page.button("Confirm consent and send referral").click()
    page.wait_for_panel("done")
    [consent] = _consents(world, patient)
    assert consent.decision == "given" and consent.method == "written"
    with world.db.session() as session:
        [referral] = session.exec(select(Referral).where(Referral.patient_id == patient)).all()
    requests = world.search(world.housing, "ServiceRequest")
    notes = [
        n["text"]
        for r in requests
        if any(i["value"] == referral.id for i in r.get("identifier", []))
        for n in r.get("note", [])
    ]
    assert "Tenure: social housing" in notes
    assert "Main concerns: cold or damp" in notes


def test_decline_is_recorded_with_its_reason(page: PopupPage, world: PopupWorld) -> None:
    patient, _ = _arrive(world)
    page.wait_for_dialog()

    page.button("Patient declines").click()
    page.wait_for_panel("decline")
    page.button("Record decline").click()  # no reason chosen yet: the form says so
    page.wait(lambda d: page.js("return !!document.getElementById('reason-error')"))
    assert "Select why the patient declined" in page.text("reason-error")
    assert _consents(world, patient) == []

    page.driver.find_element("css selector", "input[name=reason][value=has-help]").click()
    page.driver.find_element("id", "decline-detail").send_keys("Has a warden visit weekly")
    page.button("Record decline").click()
    page.wait_for_panel("done")
    assert page.text("done-title") == "Decline recorded"

    [consent] = _consents(world, patient)
    assert consent.decision == "declined"
    assert consent.reason == "Already getting help with their home: Has a warden visit weekly"
    flag = world.flag_of(patient)
    assert flag.outcome == FlagStatus.DECLINED
    assert flag.outcome_reason == consent.reason
    with world.db.session() as session:
        assert session.exec(select(Referral).where(Referral.patient_id == patient)).all() == []


def test_a_script_payload_in_the_patient_name_is_shown_as_text(
    page: PopupPage, world: PopupWorld
) -> None:
    given = '<img src=x onerror="window.__pwned=1">'
    family = "<script>window.__pwned=2</script>"
    patient = world.take_patient()
    world.rename(patient, given, family)
    appointment = world.book(patient)
    world.set_status(appointment, "arrived")
    page.wait_for_dialog()

    shown = page.text("dialog-name")
    assert given in shown and family.upper() in shown
    assert page.js("return document.querySelectorAll('#prompt-dialog img, main img').length") == 0
    listed = page.js(
        "return document.querySelector('#prompt-list .hh-prompt:last-child').textContent"
    )
    assert given in listed
    # The preview the patient is shown carries the name as text too.
    page.button("Patient consents — refer").click()
    page.wait(lambda d: given in page.text("preview-consent"))
    assert page.js("return document.querySelectorAll('#preview-consent img').length") == 0

    # The server-rendered list after a reload escapes it as well.
    page.driver.get(world.url + "/")
    page.wait(lambda d: given in d.find_element("id", "prompt-list").text)
    assert (
        page.js("return document.querySelectorAll('#prompt-list img, #prompt-list script').length")
        == 0
    )
    assert page.js("return typeof window.__pwned") == "undefined", "no injected script ran"


def test_the_dialog_works_from_the_keyboard_alone(page: PopupPage, world: PopupWorld) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    keys = ActionChains(page.driver)
    patient, _ = _arrive(world)
    page.wait_for_dialog()
    assert page.active()["id"] == "choose-title"

    # Tab stays inside the modal dialog, and reaches every action.
    reached = set()
    for _ in range(12):
        keys.send_keys(Keys.TAB).perform()
        assert page.active()["inDialog"], "focus escaped the modal dialog"
        reached.add(page.active()["action"])
    assert {"consent-start", "decline-start", "snooze", "not-appropriate-start", "dismiss"} <= (
        reached
    )

    # Escape closes it; focus goes back to the page, and the prompt stays listed.
    keys.send_keys(Keys.ESCAPE).perform()
    # The page moves focus back in the dialog's "close" event, a task queued after the
    # dialog shuts: wait for both, or the check races the handler (1 run in 5 failed).
    page.wait(lambda d: not page.dialog_open() and not page.active()["inDialog"])
    flag_id = world.flag_of(patient).id
    opener = page.js(
        "return document.querySelector(`[data-open='${arguments[0]}']`) !== null", flag_id
    )
    assert opener

    # Reopen from the list with the keyboard, then "Discuss next time".
    for _ in range(40):
        if page.js("return document.activeElement.dataset.open || null") == flag_id:
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        raise AssertionError("the prompt's button cannot be reached with Tab")
    keys.send_keys(Keys.ENTER).perform()
    page.wait_for_dialog()
    for _ in range(20):
        if page.active()["action"] == "snooze":
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        raise AssertionError("'Discuss next time' cannot be reached with Tab")
    keys.send_keys(Keys.ENTER).perform()
    page.wait_for_panel("done")
    assert page.active()["id"] == "done-title"
    page.wait(lambda d: world.flag_of(patient).status == FlagStatus.SNOOZED)
    keys.send_keys(Keys.TAB, Keys.ENTER).perform()  # the Close button
    page.wait(lambda d: not page.dialog_open())


def test_not_appropriate_is_recorded_from_the_keyboard(page: PopupPage, world: PopupWorld) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    keys = ActionChains(page.driver)
    patient, _ = _arrive(world)
    page.wait_for_dialog()
    for _ in range(20):
        if page.active()["action"] == "not-appropriate-start":
            break
        keys.send_keys(Keys.TAB).perform()
    else:
        raise AssertionError("'Not appropriate for this patient' cannot be reached with Tab")
    keys.send_keys(Keys.ENTER).perform()
    page.wait_for_panel("not-appropriate")
    assert page.active()["id"] == "not-appropriate-title"
    keys.send_keys(Keys.TAB, "Lives in a care home").perform()  # the optional reason
    assert page.active()["id"] == "not-appropriate-reason"
    keys.send_keys(Keys.TAB, Keys.ENTER).perform()  # Record not appropriate
    page.wait_for_panel("done")
    assert page.text("done-title") == "Recorded as not appropriate"
    flag = world.flag_of(patient)
    assert flag.outcome == FlagStatus.NOT_APPROPRIATE
    assert flag.outcome_reason == "Lives in a care home"
    assert _consents(world, patient) == []
