"""Building the command line leaves each command's heavy imports to its handler.

Every command builds the parser of every area, so whatever an area's ``cli.py`` imports
at the top is paid by all of them: a delivery worker used to start by importing
matplotlib and the web apps. Each command runs in a fresh process, so this is checked
in one too.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

COMMANDS = (("referrals", "deliver", "--once"), ("sync", "--once"))

# Only the handlers that use these may import them (alembic comes with opening a
# database, fhir.resources with the models some handlers validate against).
HEAVY = ("matplotlib", "fastapi", "uvicorn", "hl7apy", "alembic", "fhir.resources")

SCRIPT = """
import json, sys
from healthy_homes.cli import build_parser
build_parser().parse_args(json.loads(sys.argv[1]))
print(json.dumps(sorted(sys.modules)))
"""


@functools.cache
def _loaded_after_parsing(command: tuple[str, ...]) -> frozenset[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(command)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return frozenset(json.loads(done.stdout))


def _cases() -> list[object]:
    cases: list[object] = []
    for command in COMMANDS:
        name = " ".join(command)
        cases += [pytest.param(command, module, id=f"{name}: {module}") for module in HEAVY]
    return cases


@pytest.mark.parametrize(("command", "module"), _cases())
def test_parsing_a_command_does_not_import_heavy_modules(
    command: tuple[str, ...], module: str
) -> None:
    loaded = _loaded_after_parsing(command)
    assert not {m for m in loaded if m == module or m.startswith(module + ".")}


def test_the_parser_still_knows_every_area() -> None:
    # The probe above would pass vacuously if the areas were no longer registered.
    from healthy_homes.cli import build_parser

    help_text = build_parser().format_help()
    for command in ("referrals", "sync", "report", "cds-hooks", "mock-server", "web", "db"):
        assert command in help_text
