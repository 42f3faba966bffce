"""``healthy-homes web``: every command explains itself; setup is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.web import assets


@pytest.mark.parametrize("argv", [["web"], ["web", "setup"], ["web", "popup"]])
def test_web_commands_explain_themselves(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: healthy-homes {' '.join(argv)}" in text and len(text) > 200


def test_setup_does_nothing_when_the_pinned_version_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "node_modules" / "nhsuk-frontend"
    dist = package / "dist" / "nhsuk"
    dist.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"version": assets.NHSUK_FRONTEND_VERSION}))
    (dist / assets.CSS_FILE).write_text("")
    (dist / assets.JS_FILE).write_text("")
    assert main(["web", "setup", "--assets-dir", str(tmp_path)]) == 0
    assert "already installed" in capsys.readouterr().out


def test_setup_reports_a_missing_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    assert main(["web", "setup", "--assets-dir", str(tmp_path / "assets")]) == 2
    assert "npm" in capsys.readouterr().err
