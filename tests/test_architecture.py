"""Dependencies point one way; the mock server stands in for someone else's system."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "healthy_homes"
DOMAIN = {
    "accounts",
    "connector",
    "flags",
    "consent",
    "referrals",
    "registers",
    "store",
    "housing",
    "reporting",
    "demo",
    "cds_hooks",
    "ops",
}
BOTTOM = {"config", "fhir"}


def _imports(path: Path) -> set[str]:
    """Top-level healthy_homes subpackages a module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "healthy_homes" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_mock_server_never_imports_the_connector_side() -> None:
    for path in (PACKAGE / "mock_server").rglob("*.py"):
        bad = _imports(path) & DOMAIN
        assert not bad, f"{path.name} imports {bad}"
        assert "fhir.client" not in path.read_text(encoding="utf-8")


def test_mock_server_runtime_import_graph_is_clean() -> None:
    code = (
        "import sys, healthy_homes.mock_server.app, healthy_homes.mock_server.cli\n"
        "bad = sorted(m for m in sys.modules if m.startswith('healthy_homes.') and "
        f"(m.split('.')[1] in {sorted(DOMAIN)!r} or m == 'healthy_homes.fhir.client'))\n"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_bottom_layers_do_not_import_domain_packages() -> None:
    for layer in BOTTOM:
        for path in (PACKAGE / layer).rglob("*.py"):
            bad = _imports(path) & DOMAIN
            assert not bad, f"{layer}/{path.name} imports {bad}"
