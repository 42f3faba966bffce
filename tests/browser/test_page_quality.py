"""The page itself: basic accessibility, the NHS design system look, notifications."""

from __future__ import annotations

from typing import Any

import pytest

from healthy_homes.store.models import FlagStatus
from tests.browser.page import PopupPage
from tests.web.world import PopupWorld

pytestmark = pytest.mark.e2e

#: Landmarks, headings, labels and names, checked in the page (axe's basic rules).
A11Y_CHECK = """
const problems = [];
const name = (el) => (el.getAttribute('aria-label') || el.textContent || '').trim();
if (document.documentElement.lang !== 'en') problems.push('html has no lang');
if (!document.title.trim()) problems.push('no title');
for (const [sel, what] of [['main', 'main'], ['header[role=banner], header', 'banner'],
                           ['footer', 'contentinfo']]) {
  if (document.querySelectorAll(sel).length < 1) problems.push(`no ${what} landmark`);
}
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
for (const el of document.querySelectorAll('input, textarea, select')) {
  if (el.type === 'hidden') continue;
  const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`))
    || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!labelled) problems.push(`unlabelled ${el.name || el.id}`);
}
for (const el of document.querySelectorAll('button, a[href]')) {
  if (!name(el)) problems.push(`nameless ${el.tagName} ${el.outerHTML.slice(0, 60)}`);
}
for (const el of document.querySelectorAll('[aria-labelledby]')) {
  for (const id of el.getAttribute('aria-labelledby').split(/\\s+/)) {
    if (!document.getElementById(id)) problems.push(`aria-labelledby -> missing #${id}`);
  }
}
for (const fieldset of document.querySelectorAll('fieldset')) {
  if (!fieldset.querySelector('legend')) problems.push('fieldset without legend');
}
const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
if (dupes.length) problems.push(`duplicate ids ${dupes}`);
return problems;
"""


def test_basic_accessibility(browser: Any, world: PopupWorld) -> None:
    page = PopupPage(browser, world.url).open()
    assert page.js(A11Y_CHECK) == []
    dialog = page.dialog
    assert dialog.tag_name == "dialog"  # implicit role=dialog
    assert dialog.get_attribute("aria-modal") == "true"


def test_content_security_policy_blocks_nothing_of_ours(browser: Any, world: PopupWorld) -> None:
    browser.get_log("browser")  # drop earlier entries
    PopupPage(browser, world.url).open()
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # nhsuk-frontend's web fonts come from assets.nhs.uk: refused on purpose (font-src
    # 'self'); the system font stands in. Nothing else may be refused or fail.
    assert [m for m in errors if "assets.nhs.uk/fonts" not in m] == []


def test_the_page_wears_the_nhs_design_system(
    browser: Any, world: PopupWorld, assets_installed: bool
) -> None:
    if not assets_installed:
        from tests.browser.conftest import require

        require("nhsuk-frontend is not installed: run 'healthy-homes web setup'")
    page = PopupPage(browser, world.url).open()
    header = page.js(
        "return getComputedStyle(document.querySelector('.nhsuk-header')).backgroundColor"
    )
    assert header == "rgb(0, 94, 184)"  # NHS blue, from nhsuk-frontend's stylesheet
    assert page.js("return document.body.classList.contains('nhsuk-frontend-supported')")
    # nhsuk-frontend's own script ran (initAll marks the components it set up).
    page.wait(lambda d: page.js("return !!document.querySelector('[data-nhsuk-header-init]')"))


def test_desktop_notification_when_the_tab_is_in_the_background(
    browser: Any, world: PopupWorld
) -> None:
    # What the "Turn on desktop notifications" click obtains from the person.
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": world.url, "permissions": ["notifications"]}
    )
    page = PopupPage(browser, world.url).open()
    assert page.js("return Notification.permission") == "granted"
    popup_tab = browser.current_window_handle
    patient = world.take_patient()
    appointment = world.book(patient)
    browser.switch_to.new_window("tab")  # the clinician works in another tab
    try:
        world.set_status(appointment, "arrived")
        # The background page still opens its dialog, which marks the flag shown.
        page.wait(lambda d: world.flag_of(patient).status == FlagStatus.SHOWN)
    finally:
        browser.close()
        browser.switch_to.window(popup_tab)
    flag_id = world.flag_of(patient).id
    assert page.js("return document.body.dataset.lastNotification") == flag_id
