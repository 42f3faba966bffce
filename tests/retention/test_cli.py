"""'healthy-homes purge [--dry-run]' and the nightly job on the connector's schedule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from healthy_homes.cli import main
from healthy_homes.clock import FixedClock
from healthy_homes.config.retention import RetentionConfig
from healthy_homes.connector.scheduler import job_options
from healthy_homes.retention.schedule import JOB_ID, add_purge_job
from healthy_homes.store.db import Database
from tests.retention.seed import patient
from tests.retention.test_purge import patients_left, snapshot


def test_purge_command_dry_run_then_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'hh.db'}"
    monkeypatch.setenv("HEALTHY_HOMES__STORAGE__URL", url)
    monkeypatch.chdir(tmp_path)
    db = Database(url)
    db.upgrade()
    with db.session() as session:  # the command uses the real clock
        patient(session, "p-old", datetime.now(UTC) - timedelta(days=1000))
        patient(session, "p-new", datetime.now(UTC))
    before = snapshot(db)
    assert main(["purge", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "register_membership: 1" in out and "flag_event: 1" in out
    assert "would remove 7 row(s)" in out
    assert snapshot(db) == before
    assert main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "removed 7 row(s)" in out and "database " in out
    assert patients_left(db) == {"p-new"}
    db.dispose()


async def test_the_nightly_job_purges(db: Database) -> None:
    now = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)
    with db.session() as session:
        patient(session, "p-old", now - timedelta(days=500))
    config = RetentionConfig(run_at=time(2, 45))
    scheduler = AsyncIOScheduler(timezone="Europe/London")
    add_purge_job(scheduler, db, config, FixedClock(now), scheduler.timezone, job_options())
    [job] = scheduler.get_jobs()
    assert job.id == JOB_ID and job.max_instances == 1
    assert "hour='2'" in str(job.trigger) and "minute='45'" in str(job.trigger)
    report = await job.func(*job.args)
    assert report.counts["register_membership"] == 1
    assert patients_left(db) == set()
    off = AsyncIOScheduler(timezone="Europe/London")
    add_purge_job(off, db, RetentionConfig(nightly=False), FixedClock(now), off.timezone, {})
    assert off.get_jobs() == []
