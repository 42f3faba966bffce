"""A pytest plugin that takes a safety control out around the tests that should notice.

Used only by ``test_hazard_log.py``, which runs every hazard's tests in one child pytest
with ``-p tests.safety.remove_control`` and ``HH_REMOVAL_PLAN`` naming a JSON file of
``{test node id: removal name}``. The removal is applied before the test's fixtures are
set up and undone after they are torn down, so each test sees only its own hazard's
control missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.safety.removals import apply, restore

_PLAN: dict[str, str] = (
    json.loads(Path(os.environ["HH_REMOVAL_PLAN"]).read_text(encoding="utf-8"))
    if os.environ.get("HH_REMOVAL_PLAN")
    else {}
)


#: Planned nodes that have already failed: their other parameters are skipped, as ``-x``
#: would, because a test without its control may hang (an event stream served to
#: someone who should have been refused never ends).
_NOTICED: set[str] = set()


def _node(item: pytest.Item) -> str | None:
    node = item.nodeid.split("[", 1)[0]
    for key in (node, node.split("::", 1)[0]):
        if key in _PLAN:
            return key
    return None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """Remove the planned control for the whole of this test (setup, call, teardown)."""
    node = _node(item)
    if node:
        apply(_PLAN[node])
    try:
        yield
    finally:
        restore()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the rest of a planned test once one of its parameters has failed."""
    node = _node(item)
    if node in _NOTICED:
        pytest.skip("this test already noticed the control's removal")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember a planned test that failed in its call."""
    if report.when == "call" and report.failed:
        node = report.nodeid.split("[", 1)[0]
        for key in (node, node.split("::", 1)[0]):
            if key in _PLAN:
                _NOTICED.add(key)
