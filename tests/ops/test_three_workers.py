"""Acceptance (issue 8): three workers on a real PostgreSQL deliver 2,000 referrals: each
exactly once, with the work spread across the workers; killing one worker mid-run loses
nothing.

Three delivery worker processes claim from one outbox (``FOR UPDATE SKIP LOCKED`` under
a lease) and send to a mock housing FHIR server on loopback, in a process of its own
(it is someone else's server). Once about a third has arrived, one worker is SIGKILLed;
what it held comes back when its leases expire and the other two finish. The receiver
holds each referral exactly once (a send the killed worker made but never recorded is
repeated under the same identifier and de-duplicated by conditional create), and the
outbox ends with every entry delivered.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.store.db import Database
from tests.delivery.helpers import states
from tests.delivery.seed import SERVICE_ID, enqueue

REFERRALS = 2000
WORKERS = 3
KILL_AFTER = REFERRALS // 3
SCRIPT = Path(__file__).with_name("delivery_process.py")
ROOT = Path(__file__).parents[2]


def _config(path: Path, db_url: str, housing_url: str) -> Path:
    config = path / "hh.toml"
    config.write_text(
        f"""
[storage]
url = "{db_url}"

[[housing_services]]
id = "{SERVICE_ID}"
name = "Housing"
fhir_base_url = "{housing_url}"

[delivery]
batch_size = 4
concurrency = 4
lease_seconds = 3.0
send_timeout_seconds = 2.5
poll_seconds = 0.1
max_attempts = 100
backoff_base_seconds = 0.05
backoff_cap_seconds = 0.2
"""
    )
    return config


def _receiver(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """A mock housing FHIR server in its own process; its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "healthy_homes", "mock-server", "--mode", "housing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "receiver.err").open("wb"),
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "FHIR base:" in line:
            return process, line.split("FHIR base:")[1].strip()
    raise AssertionError((tmp_path / "receiver.err").read_text()[-2000:])


def received(base_url: str) -> Counter[str]:
    """How many ServiceRequests the receiver holds per referral identifier (read over FHIR)."""
    counts: Counter[str] = Counter()
    url: str | None = f"{base_url}/ServiceRequest?_count=500"
    with httpx.Client(timeout=60) as client:
        while url:
            bundle = client.get(url).raise_for_status().json()
            for entry in bundle.get("entry") or []:
                for identifier in entry["resource"].get("identifier") or []:
                    if identifier.get("system") == HH_REFERRAL_ID:
                        counts[str(identifier["value"])] += 1
            url = next(
                (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None
            )
    return counts


def _shares(logs: list[Path]) -> list[int]:
    return [len(log.read_text().split()) if log.exists() else 0 for log in logs]


@pytest.mark.e2e
@pytest.mark.postgres
def test_three_workers_deliver_2000_each_exactly_once_and_a_kill_loses_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    db.upgrade()
    receiver, housing_url = _receiver(tmp_path)
    config = _config(tmp_path, postgres_url, housing_url)
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), str(config), f"worker-{n}", str(logs[n])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(tmp_path / f"worker-{n}.err").open("wb"),
            cwd=ROOT,
        )
        for n in range(WORKERS)
    ]
    try:
        # Queued while the workers load (they claim nothing before the go).
        ids = enqueue(db, REFERRALS, datetime.now(UTC))
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == b"ready\n"
        for worker in workers:  # all three start together
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            worker.stdin.flush()

        deadline = time.monotonic() + 400
        while sum(_shares(logs)) < KILL_AFTER:
            assert time.monotonic() < deadline, f"stalled at {_shares(logs)}"
            assert all(w.poll() is None for w in workers)
            time.sleep(0.02)
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        before_kill = _shares(logs)
        # Fair shares: with three workers claiming the same queue, none is starved.
        assert min(before_kill) >= sum(before_kill) // (WORKERS * 3), before_kill

        while states(db).get("delivered", 0) < REFERRALS:
            assert time.monotonic() < deadline, f"outbox stuck at {states(db)}"
            assert all(w.poll() is None for w in workers[1:])
            time.sleep(0.05)
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
        for n, worker in enumerate(workers[1:], start=1):
            assert worker.wait(timeout=30) == 0, (tmp_path / f"worker-{n}.err").read_text()[-2000:]
        counts = received(housing_url)
    finally:
        for worker in [*workers, receiver]:  # never leave a process behind, whatever failed
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert states(db) == Counter({"delivered": REFERRALS})
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}, "a referral arrived more than once"
    after = _shares(logs)
    assert after[0] == before_kill[0]  # the killed worker did nothing more
    assert all(share > before for share, before in zip(after[1:], before_kill[1:], strict=True))
    db.dispose()
