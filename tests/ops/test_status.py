"""``healthy-homes status``: the one-screen summary, from a deployment that has done real work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.clock import SystemClock
from healthy_homes.store.db import Database
from tests.ops.world import DOWN, NEVER, SYNCED, build, settings_for


def test_status_summarises_practices_outbox_alerts_and_todays_flags(
    tmp_path: Path, mock_fhir_factory, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    db.upgrade()
    practice = mock_fhir_factory(patients=120, seed=21, ods_code=SYNCED)
    housing = mock_fhir_factory(mode="housing")
    settings = settings_for(db, practice, housing)
    world = build(settings, db, SystemClock())
    config = tmp_path / "hh.toml"
    config.write_text(
        f'[storage]\nurl = "{db.url}"\n\n'
        + "".join(
            f'[[practices]]\nods_code = "{p.ods_code}"\nname = "{p.name}"\n'
            f'fhir_base_url = "{p.fhir_base_url}"\n\n'
            for p in settings.practices
        )
    )
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()

    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Practices: 3 (1 failing at their last sync)" in lines
    synced = next(line for line in lines if SYNCED in line)
    assert "Synced Surgery" in synced and "incremental" in synced and synced.endswith(": OK")
    down = next(line for line in lines if DOWN in line)
    assert "FAILED: " in down and "ConnectError" in down
    assert next(line for line in lines if NEVER in line).endswith("never synced")
    outbox = next(line for line in lines if line.startswith("Outbox:"))
    # The oldest was queued 10 minutes before the build (real clock: a little more by now).
    assert re.match(rf"Outbox: {world.waiting} waiting, oldest 1\d min ago;", outbox), outbox
    assert f"{world.dead} dead letter(s); {world.delivered} delivered; 0 cancelled" in outbox
    assert "Open alerts: 1 (referral-dead-letter 1)" in lines
    assert f"Flags today: {world.flags_raised} raised, 2 shown, 2 acted on" in lines
    assert len(lines) <= 24  # one screen for a small deployment
    db.dispose()
