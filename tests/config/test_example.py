"""The example configuration 'healthy-homes init' writes covers every section."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from healthy_homes.config import load_settings
from healthy_homes.config.cli import example_text
from healthy_homes.config.models import Settings


def _headers(text: str) -> set[str]:
    # A list of tables may be shown commented out (e.g. '# [[registers]]'): still named.
    found = re.findall(r"^#?\s*\[\[?([a-z_]+)\]?\]\s*$", text, flags=re.MULTILINE)
    return set(found)


def test_example_validates_and_names_every_top_level_section(tmp_path: Path) -> None:
    target = tmp_path / "healthy-homes.toml"
    target.write_text(example_text())
    load_settings(target, env=False)  # raises on an unknown key or a bad value
    missing = set(Settings.model_fields) - _headers(example_text())
    assert not missing, f"sections missing from config/example.toml: {sorted(missing)}"


def test_example_sets_its_sections_as_written(tmp_path: Path) -> None:
    # The uncommented sections are real TOML tables, not only comments.
    parsed = tomllib.loads(example_text())
    assert {"access", "retention", "reporting", "storage"} <= set(parsed)
    assert parsed["access"]["idle_minutes"] == Settings().access.idle_minutes
