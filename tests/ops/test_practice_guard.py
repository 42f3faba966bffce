"""One practice's sync runs on one worker at a time, across processes, on SQLite and PostgreSQL.

Two real connector processes run the same practice against a slowed mock FHIR server;
the runs each one reports (started, finished) never overlap. Without the guard the
same workload does overlap, so the check can fail. A worker killed in the middle of a
run (SIGKILL, against a server that never answers) holds the practice until its lease
expires on SQLite (FixedClock moved past the expiry) and not at all on PostgreSQL (the
server frees an advisory lock with its connection).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.loader import load_settings
from healthy_homes.connector.service import ConnectorService
from healthy_homes.ops.leases import LeaseTable, advisory_key, job_name
from healthy_homes.store.db import Database
from healthy_homes.store.ops_models import PracticeLease
from tests.ops.conftest import HangingEndpoint, practice_toml

ODS = "A12345"
ROUNDS = 5
SCRIPT = Path(__file__).with_name("sync_process.py")
ROOT = Path(__file__).parents[2]


def _config(path: Path, store_url: str, fhir_url: str, lease_seconds: float = 60) -> Path:
    config = path / "hh.toml"
    config.write_text(
        f'[storage]\nurl = "{store_url}"\n\n[ops]\nlease_seconds = {lease_seconds}\n\n'
        + practice_toml(ODS, fhir_url)
    )
    return config


def _start(config: Path, *extra: str, rounds: int = ROUNDS) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(config), ODS, str(rounds), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    assert json.loads(ready) == {"ready": True}, process.stderr.read() if process.stderr else ""
    return process


def _race(processes: list[subprocess.Popen[str]]) -> list[list[dict[str, object]]]:
    """Tell two loaded processes to go together; each one's runs."""
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        outputs.append([json.loads(line) for line in out.splitlines() if line.strip()])
    return outputs


def _intervals(runs: list[dict[str, object]]) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(str(r["started"])), datetime.fromisoformat(str(r["finished"])))
        for r in runs
        if not r["skipped"] and r["started"]
    ]


def _overlaps(a: list[dict[str, object]], b: list[dict[str, object]]) -> int:
    return sum(1 for s1, e1 in _intervals(a) for s2, e2 in _intervals(b) if s1 < e2 and s2 < e1)


@pytest.mark.e2e
def test_two_processes_never_sync_one_practice_at_once(
    store_url: str, tmp_path: Path, mock_fhir_factory
) -> None:
    practice = mock_fhir_factory(patients=40, seed=3)
    # Every request a little slow, so an unguarded second worker lands inside a run.
    httpx.put(f"{practice.url}/admin/faults", json={"rules": ["*:latency=20"]}).raise_for_status()
    config = _config(tmp_path, store_url, practice.base_url)

    # All four load at once (imports are most of a process's start-up).
    unguarded = [_start(config, "--no-guard"), _start(config, "--no-guard")]
    guarded = [_start(config), _start(config)]
    assert _overlaps(*_race(unguarded)) > 0, "the workload must overlap when nothing guards it"

    first, second = _race(guarded)
    assert _overlaps(first, second) == 0
    for runs in (first, second):
        assert not [r["error"] for r in runs if r["error"]]
    ran = [len(_intervals(runs)) for runs in (first, second)]
    skipped = sum(1 for runs in (first, second) for r in runs if r["skipped"])
    assert sum(ran) >= ROUNDS and skipped > 0, (ran, skipped)  # they really competed


def _held_rows(db: Database) -> list[PracticeLease]:
    with db.session() as session:
        return list(session.exec(select(PracticeLease)))


def _kill_holder_mid_run(config: Path, db: Database, hanging: HangingEndpoint) -> None:
    holder = _start(config, rounds=1)
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    deadline = time.monotonic() + 30
    while not hanging.accepted:  # the run has its guard and is waiting on the server
        assert time.monotonic() < deadline and holder.poll() is None
        time.sleep(0.01)
    holder.send_signal(signal.SIGKILL)
    holder.wait()


@pytest.mark.e2e
def test_sqlite_lease_of_a_killed_worker_is_taken_over_after_it_expires(
    tmp_path: Path, hanging_endpoint: HangingEndpoint, mock_fhir_factory
) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    db = Database(url)
    db.upgrade()
    config = _config(tmp_path, url, hanging_endpoint.url, lease_seconds=60)
    _kill_holder_mid_run(config, db, hanging_endpoint)
    (row,) = _held_rows(db)
    assert row.name == job_name("sync", ODS) and row.expires_at > datetime.now(UTC)

    # Another worker, its clock just before and then just after the dead worker's expiry.
    practice = mock_fhir_factory(patients=20, seed=5)
    settings = load_settings(config).model_copy(
        update={
            "practices": [
                load_settings(config)
                .practices[0]
                .model_copy(update={"fhir_base_url": practice.base_url})
            ]
        }
    )
    clock = FixedClock(row.expires_at - timedelta(seconds=1))

    async def runs() -> tuple[bool, bool, str | None]:
        async with ConnectorService(settings, db, clock) as service:
            before = await service.run(ODS, "auto")
            clock.set(row.expires_at + timedelta(seconds=1))
            after = await service.run(ODS, "auto")
            return before.skipped, after.skipped, after.error

    skipped_before, skipped_after, error = asyncio.run(runs())
    assert skipped_before is True
    assert (skipped_after, error) == (False, None)
    assert _held_rows(db) == []  # given back after the run
    db.dispose()


def test_lease_table_grants_one_owner_renews_and_gives_back(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'lease.db'}")
    db.upgrade()
    clock = FixedClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    one, two = (LeaseTable(db, owner, 30, clock) for owner in ("w1", "w2"))
    name = job_name("sync", ODS)
    assert one.take(name) and not two.take(name)
    assert one.take(name)  # its own lease again: still granted
    clock.advance(timedelta(seconds=20))
    assert one.renew(name)
    clock.advance(timedelta(seconds=20))  # 40 s after taking, 20 s after renewing
    assert not two.take(name)
    clock.advance(timedelta(seconds=11))
    assert two.take(name) and not one.renew(name)  # expired, taken over; w1 knows it lost it
    one.give_back(name)  # not its own any more: changes nothing
    assert not one.take(name)
    two.give_back(name)
    assert one.take(name)
    db.dispose()


def test_advisory_keys_are_stable_and_distinct() -> None:
    assert advisory_key("sync:A12345") == advisory_key("sync:A12345")
    keys = {advisory_key(job_name("sync", f"P{n:05d}")) for n in range(10_000)}
    assert len(keys) == 10_000
    assert all(-(2**63) <= k < 2**63 for k in keys)


@pytest.mark.e2e
def test_postgres_lock_of_a_killed_worker_is_free_at_once(
    postgres_url: str, tmp_path: Path, hanging_endpoint: HangingEndpoint, mock_fhir_factory
) -> None:
    db = Database(postgres_url)
    db.upgrade()
    config = _config(tmp_path, postgres_url, hanging_endpoint.url)
    holder_settings = load_settings(config)
    _kill_holder_mid_run(config, db, hanging_endpoint)
    practice = mock_fhir_factory(patients=20, seed=5)
    settings = holder_settings.model_copy(
        update={
            "practices": [
                holder_settings.practices[0].model_copy(update={"fhir_base_url": practice.base_url})
            ]
        }
    )

    async def run_after_kill() -> tuple[bool, str | None]:
        async with ConnectorService(settings, db, FixedClock(datetime.now(UTC))) as service:
            for _ in range(100):  # the server notices the dropped connection within moments
                run = await service.run(ODS, "auto")
                if not run.skipped:
                    return False, run.error
                await asyncio.sleep(0.05)
            return True, None

    assert asyncio.run(run_after_kill()) == (False, None)
    db.dispose()
