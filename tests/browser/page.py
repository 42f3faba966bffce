"""Reading and driving the pop-up page in the browser, as a clinician would."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

WAIT_SECONDS = 10


class PopupPage:
    """The pop-up page in one browser tab."""

    def __init__(self, driver: WebDriver, url: str) -> None:
        self.driver = driver
        self.url = url

    def open(self) -> PopupPage:
        """Load the page (signing in first if asked to) and wait for its stream's snapshot."""
        self.driver.get(self.url + "/")
        if "/sign-in" in self.driver.current_url:
            from tests.browser.conftest import sign_in_form
            from tests.web.world import CLINICIAN, PASSWORD

            sign_in_form(self.driver, self.url, CLINICIAN.user_id, PASSWORD)
            self.driver.get(self.url + "/")
        self.wait(lambda d: d.execute_script("return document.body.dataset.stream") == "ready")
        # A marker that a reload would wipe: the prompt must arrive without one.
        self.driver.execute_script("window.__loadedOnce = true;")
        return self

    def wait(self, condition: Any, seconds: float = WAIT_SECONDS) -> Any:
        """Wait for a condition on the driver."""
        return WebDriverWait(self.driver, seconds, poll_frequency=0.05).until(condition)

    def js(self, script: str, *args: Any) -> Any:
        """Run a script in the page."""
        return self.driver.execute_script(script, *args)

    @property
    def dialog(self) -> WebElement:
        """The prompt dialog."""
        return self.driver.find_element(By.ID, "prompt-dialog")

    def dialog_open(self) -> bool:
        """Whether the dialog is showing (modally)."""
        return bool(self.js("return document.getElementById('prompt-dialog').open"))

    def wait_for_dialog(self) -> WebElement:
        """Wait for the pop-up to appear."""
        self.wait(lambda d: self.dialog_open())
        return self.dialog

    def panel(self) -> str:
        """The dialog panel in view."""
        return str(
            self.js(
                "return [...document.querySelectorAll('#prompt-dialog [data-panel]')]"
                ".find(p => !p.hidden).dataset.panel"
            )
        )

    def wait_for_panel(self, name: str) -> None:
        """Wait until the dialog shows a panel."""
        self.wait(lambda d: self.panel() == name)

    def button(self, text: str) -> WebElement:
        """A visible button in the dialog, by its text."""
        for element in self.dialog.find_elements(By.CSS_SELECTOR, "button"):
            if element.is_displayed() and element.text.strip() == text:
                return element
        raise AssertionError(f"no visible button '{text}' in the dialog")

    def active(self) -> dict[str, Any]:
        """What has keyboard focus."""
        result: dict[str, Any] = self.js(
            "const a = document.activeElement;"
            "return {id: a.id, tag: a.tagName, text: (a.textContent || '').trim(),"
            " inDialog: !!a.closest('#prompt-dialog'), action: a.dataset.action || null};"
        )
        return result

    def text(self, element_id: str) -> str:
        """The text content of an element (exactly as the page holds it)."""
        return str(self.js("return document.getElementById(arguments[0]).textContent", element_id))
