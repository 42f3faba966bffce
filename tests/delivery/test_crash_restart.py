"""Acceptance: the worker is killed with SIGKILL at random points, 20 times, and restarted.

The worker runs as its own process (``healthy-homes referrals deliver --once``) against
a real mock housing FHIR server on a loopback port, slowed a little so that every
kill lands while referrals are in flight. Whatever a kill interrupts (a claim, a send
whose answer never came, a send not yet recorded) is taken over once its lease
expires and sent again under the same referral id. In the end every referral is at
the receiver exactly once.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from healthy_homes.store.db import Database
from tests.delivery.helpers import received, states
from tests.delivery.seed import SERVICE_ID, enqueue

REFERRALS = 500
KILLS = 20
SEED = 20261124


def _config(path: Path, db_url: str, housing_url: str) -> Path:
    config = path / "healthy-homes.toml"
    config.write_text(
        f"""
[storage]
url = "{db_url}"

[[housing_services]]
id = "{SERVICE_ID}"
name = "Housing"
fhir_base_url = "{housing_url}"

[delivery]
concurrency = 4
lease_seconds = 1.0
send_timeout_seconds = 0.8
max_attempts = 100
backoff_base_seconds = 0.05
backoff_cap_seconds = 0.2
"""
    )
    return config


WORKER = Path(__file__).with_name("worker_process.py")


class Worker:
    """A worker process, imports done, waiting to be told to go."""

    #: Every worker started, so a failing test leaves none running behind it.
    started: ClassVar[list[Worker]] = []

    def __init__(self, config: Path) -> None:
        # A file, not a pipe: a chatty worker must never block on a full pipe.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the worker
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=Path(__file__).parents[2],
        )
        Worker.started.append(self)

    def go(self) -> None:
        """Start delivering."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def kill(self) -> bool:
        """SIGKILL it if still running; whether it was."""
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return True

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for it to end on its own: exit code and the tail of stderr."""
        self.process.communicate(timeout=timeout)
        self.log.seek(0)
        return self.process.returncode, self.log.read().decode(errors="replace")[-2000:]


def _arrived(server) -> int:  # type: ignore[no-untyped-def]
    return int(server.store.count("ServiceRequest"))  # cheap: polled while the server works


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    yield
    while Worker.started:
        worker = Worker.started.pop()
        worker.kill()
        worker.log.close()


@pytest.mark.e2e
def test_sigkill_at_random_points_then_restart_delivers_each_referral_once(
    db: Database, fast_dir: Path, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    # A little latency on every request, so a kill often lands while a send is unanswered.
    httpx.put(f"{housing.url}/admin/faults", json={"rules": ["*:latency=15"]}).raise_for_status()
    ids = enqueue(db, REFERRALS, datetime.now(UTC))
    config = _config(fast_dir, db.url, housing.base_url)
    rng = random.Random(SEED)
    kills = 0
    waiting = Worker(config)
    while kills < KILLS:
        worker, waiting = waiting, Worker(config)  # the restart is loaded while this one runs
        before = _arrived(housing)
        worker.go()
        deadline = time.monotonic() + 20
        while _arrived(housing) == before and worker.process.poll() is None:
            assert time.monotonic() < deadline, "the worker delivered nothing"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.5))  # a seeded random point in the stream
        if worker.kill():
            kills += 1
        else:
            assert worker.finish(5)[0] == 0  # it ran out of due work before the kill
    assert 0 < _arrived(housing) < REFERRALS  # the kills really cut deliveries short
    time.sleep(1.0)  # let the last killed worker's leases expire
    last = [waiting, Worker(config)]  # restarted for good, two side by side
    for worker in last:
        worker.go()
    for worker in last:
        code, err = worker.finish(120)
        assert code == 0, err
    assert states(db) == {"delivered": REFERRALS}
    counts = received(housing)
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}, "a referral arrived more than once"
