"""The hazard log names a test for every hazard, and each test notices its control going.

For each row of ``docs/hazard-log.md`` the named control is removed in a child pytest
(``tests/safety/remove_control.py``) and the named test must fail there. The same test
passes in the ordinary run of the suite, so the failure is the control's absence.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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


@pytest.mark.parametrize("hazard", hazards(), ids=lambda h: h.id)
def test_each_hazards_test_fails_when_its_control_is_removed(hazard: Hazard) -> None:
    env = {**os.environ, "HH_REMOVE_CONTROL": hazard.removal}
    for node in hazard.tests:  # each named test must notice on its own
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-x",
                "-p",
                "tests.safety.remove_control",
                "-p",
                "no:cacheprovider",
                node,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        tail = (result.stdout + result.stderr)[-3000:]
        # Exit code 1 is "tests failed"; 2-5 would be a broken run (usage, collection, none).
        assert result.returncode == 1, (
            f"{hazard.id}: with control {hazard.removal!r} removed, {node} "
            f"exited {result.returncode} (expected a test failure)\n{tail}"
        )
        assert " failed" in result.stdout, tail
