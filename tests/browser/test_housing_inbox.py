"""Issue 6 acceptance: the housing inbox in real headless Chromium against the real app.

Referrals arrive as the connector's own transaction (``referrals/bundle.py``) posted to
the team's FHIR base; what the officer does in the browser is read back over that base,
exactly as the connector polls it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import _missing, require, sign_in_form
from tests.browser.test_page_quality import A11Y_CHECK
from tests.housing.world import (
    MANAGERS,
    OFFICERS,
    PASSWORD,
    Inbox,
    dataset,
    referral,
    start_inbox,
)

pytestmark = pytest.mark.e2e
WAIT = 10
#: Selenium looks every half second by default: a click then costs at least that.
POLL = 0.05


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    """Teams 'north' and 'south', one officer each, on a loopback port."""
    require(_missing())
    running = start_inbox(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def sign_in(driver: Any, inbox: Inbox, team: str, *, manager: bool = False) -> None:
    """Sign in through the form as the team's officer (or manager)."""
    sign_in_form(driver, inbox.url, (MANAGERS if manager else OFFICERS)[team], PASSWORD)
    WebDriverWait(driver, WAIT, poll_frequency=POLL).until(
        lambda d: d.find_elements(By.ID, "team-name")
    )


def click(driver: Any, element_id: str) -> None:
    """Press a button and wait for the next page."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, WAIT, poll_frequency=POLL).until(
        lambda d: old.id != d.find_element(By.TAG_NAME, "html").id
    )


def text(driver: Any, element_id: str) -> str:
    """The visible text of an element."""
    return str(driver.find_element(By.ID, element_id).text)


def test_officer_works_a_referral_from_queue_to_outcome_and_the_task_shows_it(
    browser: Any, inbox: Inbox
) -> None:
    inbox.send("north", referral("old-1", dataset(41, given_name="Older")))
    inbox.clock.advance(timedelta(days=12))
    inbox.send("north", referral("new-1", dataset(42, given_name="Newer")))
    inbox.clock.advance(timedelta(days=1))

    sign_in(browser, inbox, "north")
    rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    names = [r.find_element(By.TAG_NAME, "a").text for r in rows]
    assert names == ["Older Testperson41", "Newer Testperson42"], "oldest first"
    ages = [r.find_element(By.CSS_SELECTOR, "[data-age]").get_attribute("data-age") for r in rows]
    assert ages == ["13", "1"]
    assert [r.get_attribute("data-overdue") for r in rows] == ["true", "false"]
    assert "Overdue" in rows[0].text and "Overdue" not in rows[1].text

    rows[0].find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, WAIT, poll_frequency=POLL).until(
        lambda d: d.find_elements(By.ID, "patient-name")
    )
    assert text(browser, "patient-name") == "Older Testperson41"
    assert text(browser, "nhs-number") == "9990000041"
    assert "Tenure: private rented" in text(browser, "notes")
    assert text(browser, "status") == "New"

    click(browser, "accept")
    assert text(browser, "status") == "Accepted"
    assert inbox.task("north", "old-1")["status"] == "accepted"

    browser.find_element(By.ID, "visit-text").send_keys("Visited; boiler broken, loose rugs")
    click(browser, "record-visit")
    assert text(browser, "status") == "In progress"
    assert "boiler broken" in text(browser, "activity")
    task = inbox.task("north", "old-1")
    assert task["status"] == "in-progress" and task["executionPeriod"]["start"]

    browser.find_element(By.CSS_SELECTOR, "label[for='outcome-heating-fixed']").click()
    browser.find_element(By.CSS_SELECTOR, "label[for='outcome-falls-hazards-removed']").click()
    browser.find_element(By.CSS_SELECTOR, "label[for='outcome-onward-referral']").click()
    click(browser, "record-outcome")
    assert text(browser, "status") == "Completed"
    assert "Heating fixed or improved" in text(browser, "outputs")

    task = inbox.task("north", "old-1")
    assert task["status"] == "completed"
    assert task["executionPeriod"]["end"]
    assert [o["valueCodeableConcept"]["text"] for o in task["output"]] == [
        "Heating fixed or improved",
        "Falls hazards removed",
        "Onward referrals made",
    ]
    assert all(o["type"]["coding"][0]["code"] == "resulting-activity" for o in task["output"])

    browser.get(inbox.url + "/")
    open_rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in open_rows] == ["Newer Testperson42"]
    assert "Older Testperson41" in text(browser, "closed")


def test_decline_with_a_reason_reaches_the_task(browser: Any, inbox: Inbox) -> None:
    inbox.send("north", referral("dec-1", dataset(43)))
    sign_in(browser, inbox, "north")
    browser.find_element(By.CSS_SELECTOR, "#queue tbody a").click()
    WebDriverWait(browser, WAIT, poll_frequency=POLL).until(
        lambda d: d.find_elements(By.ID, "decline")
    )
    browser.find_element(By.CSS_SELECTOR, "label[for='reason-could-not-contact']").click()
    click(browser, "decline")
    assert text(browser, "status") == "Declined"
    task = inbox.task("north", "dec-1")
    assert task["status"] == "rejected"
    assert task["statusReason"]["text"] == "Could not contact"


def test_an_officer_never_sees_or_opens_another_team_s_referral(browser: Any, inbox: Inbox) -> None:
    inbox.send("north", referral("iso-n", dataset(44, family_name="Northerner")))
    inbox.send("south", referral("iso-s", dataset(45, family_name="Southerner")))
    south_task = inbox.task("south", "iso-s")

    sign_in(browser, inbox, "north")
    queue = browser.find_element(By.TAG_NAME, "main").text
    assert "Northerner" in queue and "Southerner" not in queue

    browser.get(f"{inbox.url}/referrals/{south_task['id']}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Page not found"
    assert "Southerner" not in browser.page_source
    assert "9990000045" not in browser.page_source

    sign_in(browser, inbox, "south")
    browser.get(f"{inbox.url}/referrals/{south_task['id']}")
    assert text(browser, "patient-name") == "Ada Southerner"
    assert inbox.task("south", "iso-s")["status"] == "received"


def test_pages_run_under_the_strict_csp_without_console_errors(browser: Any, inbox: Inbox) -> None:
    inbox.send("north", referral("csp-1", dataset(46)))
    browser.get_log("browser")  # drop earlier entries
    sign_in(browser, inbox, "north", manager=True)
    browser.find_element(By.CSS_SELECTOR, "#queue tbody a").click()
    WebDriverWait(browser, WAIT, poll_frequency=POLL).until(
        lambda d: d.find_elements(By.ID, "accept")
    )
    browser.get(inbox.url + "/capacity")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # nhsuk-frontend's web fonts from assets.nhs.uk are refused on purpose (font-src 'self').
    assert [m for m in errors if "assets.nhs.uk/fonts" not in m] == []


def test_every_inbox_page_passes_the_basic_accessibility_checks(
    browser: Any, inbox: Inbox, assets_installed: bool
) -> None:
    inbox.send("north", referral("a11y-1", dataset(47)))
    task = inbox.task("north", "a11y-1")
    driver = browser
    driver.delete_all_cookies()
    driver.get(inbox.url + "/sign-in")
    assert driver.execute_script(A11Y_CHECK) == [], "sign-in"
    sign_in(driver, inbox, "north", manager=True)
    for path in ("/", f"/referrals/{task['id']}", "/capacity"):
        driver.get(inbox.url + path)
        assert driver.execute_script(A11Y_CHECK) == [], path
    driver.get(f"{inbox.url}/referrals/{task['id']}")
    click(driver, "accept")
    assert driver.execute_script(A11Y_CHECK) == [], "accepted referral"
    if assets_installed:
        header = driver.execute_script(
            "return getComputedStyle(document.querySelector('.nhsuk-header')).backgroundColor"
        )
        assert header == "rgb(0, 94, 184)"  # NHS blue, from nhsuk-frontend's stylesheet
