"""``healthy-homes sync --once`` and ``healthy-homes serve`` from the command line."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.connector import cli as connector_cli
from tests.connector.helpers import practice_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "healthy-homes.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "hh.db"}"\n'
        "[sync]\nincremental_minutes = 60\nappointment_seconds = 3600\n"
        f'[[practices]]\nods_code = "A12345"\nname = "Test Surgery"\nfhir_base_url = "{base_url}"\n'
    )
    return path


def test_sync_once_full_and_by_practice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The heap freeze is for the connector's own process, not for the test run's.
    frozen: list[bool] = []
    monkeypatch.setattr(connector_cli, "freeze_startup_heap", lambda: frozen.append(True))
    server = practice_server(patients=200, seed=3)
    try:
        config = str(_config(tmp_path, server.base_url))
        assert main(["sync", "--once", "--config", config]) == 0
        assert frozen == [True]
        out = capsys.readouterr().out
        assert out.startswith("A12345: ") and "read full" in out and "copd" in out
        assert "\x1b[" not in out  # not a terminal: no progress bar
        assert main(["sync", "--once", "--config", config]) == 0
        assert "read incremental" in capsys.readouterr().out
        assert main(["sync", "--once", "--full", "--practice", "A12345", "--config", config]) == 0
        assert "read full" in capsys.readouterr().out
        assert main(["sync", "--once", "--practice", "Z99999", "--config", config]) == 2
        assert "Z99999: not a configured practice" in capsys.readouterr().err
    finally:
        server.stop()


def test_serve_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    server = practice_server(patients=100, seed=3)
    config = _config(tmp_path, server.base_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "healthy_homes", "serve", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("serving 1 practice(s)"), first
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, rest
        assert "stopped" in rest
    finally:
        if process.poll() is None:
            process.kill()
        server.stop()
