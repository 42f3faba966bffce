"""Real headless Chromium (Debian's, driven by its chromedriver) against the real app.

Without Chromium the browser tests skip, with the reason, but only outside CI: under CI
(``CI`` set) a missing browser is a failure, so the suite can never pass by not running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthy_homes.web import assets
from tests.web.world import PopupWorld, build_world

CHROMIUM = os.environ.get("HEALTHY_HOMES_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HEALTHY_HOMES_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def require(reason: str | None) -> None:
    """Skip with the reason outside CI; fail under CI."""
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session, with a fresh profile."""
    require(_missing())
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hh-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PopupWorld]:
    """The synthetic practice, housing service and pop-up app for one test module."""
    require(_missing())
    built = build_world(tmp_path_factory.mktemp("popup"))
    built.start_popup()
    try:
        yield built
    finally:
        built.stop()


def sign_in_form(driver: Any, base_url: str, username: str, password: str) -> None:
    """Sign in through an app's sign-in page, as a person would, from a clean slate."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(base_url + "/sign-in")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    # Selenium looks every half second by default; the next page is usually there sooner.
    WebDriverWait(driver, 10, poll_frequency=0.05).until(lambda d: "/sign-in" not in d.current_url)


@pytest.fixture(scope="session")
def assets_installed() -> bool:
    """nhsuk-frontend is installed where the app looks ('healthy-homes web setup')."""
    return assets.is_installed(assets.default_assets_dir())
