"""The hazard log names a test for every hazard, and each test notices its control going.

For each row of ``docs/hazard-log.md`` the named control is removed in a child pytest
(``tests/safety/remove_control.py``) and the named test must fail there. The same test
passes in the ordinary run of the suite, so the failure is the control's absence.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.safety.removals import REMOVALS

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "docs" / "hazard-log.md"


@dataclass(frozen=True)
class Hazard:
    """One row of the hazard log."""

    id: str
    removal: str
    tests: tuple[str, ...]


def _cells(line: str) -> list[str]:
    # "\|" inside a cell is an escaped pipe, not a column break.
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip() for p in parts]


def hazards() -> list[Hazard]:
    """The hazard log's rows."""
    lines = LOG.read_text(encoding="utf-8").splitlines()
    header = next(_cells(line) for line in lines if line.startswith("| ID |"))
    removal_at, test_at = header.index("Removal"), header.index("Test")
    found = []
    for line in lines:
        if not re.match(r"^\| H\d+ \|", line):
            continue
        cells = _cells(line)
        found.append(
            Hazard(
                id=cells[0],
                removal=cells[removal_at].strip("`"),
                tests=tuple(re.findall(r"`(tests/[^`]+)`", cells[test_at])),
            )
        )
    return found


def _defines(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in ast.walk(tree)
    )


def test_the_log_is_read_and_ids_are_unique() -> None:
    rows = hazards()
    assert len(rows) >= 10
    assert len({h.id for h in rows}) == len(rows)


@pytest.mark.parametrize("hazard", hazards(), ids=lambda h: h.id)
def test_every_hazard_names_a_removal_and_an_existing_test(hazard: Hazard) -> None:
    assert hazard.removal in REMOVALS, f"{hazard.id}: no removal named {hazard.removal!r}"
    assert hazard.tests, f"{hazard.id} names no test"
    for node in hazard.tests:
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), f"{hazard.id}: {path} does not exist"
        if name:
            assert _defines(ROOT / path, name.split("[")[0]), f"{hazard.id}: no {name} in {path}"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Every hazard's tests run once, each with its control removed: outcomes per test."""
    folder = tmp_path_factory.mktemp("hazards")
    plan = {node: h.removal for h in hazards() for node in h.tests}
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    report = folder / "report.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.safety.remove_control",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *plan,
        ],
        cwd=ROOT,
        env={**os.environ, "HH_REMOVAL_PLAN": str(folder / "plan.json")},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert report.exists(), (result.stdout + result.stderr)[-3000:]
    found: dict[str, list[str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        node = f"{path}.py::{case.get('name', '').split('[', 1)[0]}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        # An error (in setup or teardown) is not the test noticing: only a failure is.
        found.setdefault(node, []).append(kinds[0] if kinds else "passed")
    return found


@pytest.mark.parametrize("hazard", hazards(), ids=lambda h: h.id)
def test_each_hazards_test_fails_when_its_control_is_removed(
    hazard: Hazard, outcomes: dict[str, list[str]]
) -> None:
    for node in hazard.tests:  # each named test must notice on its own
        ran = [kinds for name, kinds in outcomes.items() if name == node or name.startswith(node)]
        assert ran, f"{hazard.id}: {node} did not run with control {hazard.removal!r} removed"
        results = [kind for kinds in ran for kind in kinds]
        assert "error" not in results, f"{hazard.id}: {node} errored (not a test failure)"
        assert "failure" in results, (
            f"{hazard.id}: {node} did not fail with control {hazard.removal!r} removed: {results}"
        )
