"""Acceptance: the worker is killed with SIGKILL at random points, 20 times, and restarted.

The worker runs as its own process (the code of ``healthy-homes referrals deliver
--once``, forked from a process that has loaded it: ``worker_process.py``) against a
real mock housing FHIR server on a loopback port, slowed a little so that every kill
lands while referrals are in flight. Each kill comes at a seeded random point in the
stream: after a random number of new arrivals and a random moment more, so what a
worker gets through before its kill does not depend on the machine's speed or load.
Whatever a kill interrupts (a claim, a send whose answer never came, a send not yet
recorded) is taken over once its lease expires and sent again under the same referral
id. In the end every referral is at the receiver exactly once.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, func, select

from healthy_homes.mock_server.pytest_plugin import MockFhirFactory
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, OutboxState
from tests.delivery.helpers import received, states
from tests.delivery.seed import SERVICE_ID, enqueue

REFERRALS = 500
KILLS = 20
SEED = 20261124
#: A kill comes after 1 to this many new arrivals, so 20 kills leave most of 500 unsent.
MOST_BETWEEN_KILLS = 10
#: Only a failure waits this long: generous, so a loaded machine is not a failure.
PATIENCE = 120.0


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


FORK_SERVER = Path(__file__).with_name("worker_process.py")
ROOT = Path(__file__).parents[2]


class Workers:
    """The fork server (``worker_process.py``): it starts, polls and kills workers."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.err = (log_dir / "fork-server.err").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(FORK_SERVER), str(config), str(log_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            cwd=ROOT,
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, (self.log_dir / "fork-server.err").read_text()[-2000:]
        return line.strip()

    def ask(self, command: str) -> str:
        """Send one command; its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def start(self) -> Worker:
        """A new worker, delivering at once."""
        return Worker(self, int(self.ask("start")))

    def close(self) -> None:
        """End the fork server; it kills any worker still running."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.err.close()


@dataclass
class Worker:
    """One worker process."""

    workers: Workers
    pid: int
    exit_code: int | None = None

    def _ended(self, answer: str) -> None:
        assert answer.startswith("exit "), answer
        self.exit_code = int(answer.removeprefix("exit "))

    def running(self) -> bool:
        """Whether it is still delivering."""
        if self.exit_code is None:
            answer = self.workers.ask(f"poll {self.pid}")
            if answer != "running":
                self._ended(answer)
        return self.exit_code is None

    def kill(self) -> bool:
        """SIGKILL it if still running; whether it was."""
        if self.exit_code is not None:
            return False
        answer = self.workers.ask(f"kill {self.pid}")
        if answer == "killed":
            self.exit_code = -9
            return True
        self._ended(answer)
        return False

    def stderr(self) -> str:
        """The tail of what it wrote to stderr."""
        log = self.workers.log_dir / f"worker-{self.pid}.err"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for it to end on its own: exit code and the tail of stderr."""
        deadline = time.monotonic() + timeout
        while self.running():
            assert time.monotonic() < deadline, "the worker never finished"
            time.sleep(0.01)
        assert self.exit_code is not None
        return self.exit_code, self.stderr()


def _arrived(server: RunningMockServer) -> int:
    return int(server.store.count("ServiceRequest"))  # cheap: polled while the server works


def _wait_until_all_due(db: Database) -> None:
    """Sleep until no entry is leased or waiting for a retry (a killed worker's leases expire)."""
    with db.session() as session:
        latest = session.exec(
            select(
                func.max(col(OutboxEntry.lease_expires_at)),
                func.max(col(OutboxEntry.next_attempt_at)),
            ).where(col(OutboxEntry.state) != OutboxState.DELIVERED)
        ).one()
    times = [t for t in latest if t is not None]
    if times:
        time.sleep(max(0.0, (max(times) - datetime.now(UTC)).total_seconds()) + 0.05)


@pytest.mark.e2e
def test_sigkill_at_random_points_then_restart_delivers_each_referral_once(
    db: Database, fast_dir: Path, mock_fhir_factory: MockFhirFactory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    # A little latency on every request, so a kill often lands while a send is unanswered.
    httpx.put(f"{housing.url}/admin/faults", json={"rules": ["*:latency=15"]}).raise_for_status()
    ids = enqueue(db, REFERRALS, datetime.now(UTC))
    config = _config(fast_dir, db.url, housing.base_url)
    rng = random.Random(SEED)
    workers = Workers(config, fast_dir)
    try:
        kills = 0
        deadline = time.monotonic() + PATIENCE
        while kills < KILLS:
            arrived = _arrived(housing)
            assert arrived < REFERRALS, f"everything arrived after only {kills} kills"
            goal = arrived + rng.randint(1, MOST_BETWEEN_KILLS)
            pause = rng.uniform(0.0, 0.02)
            worker = workers.start()
            while _arrived(housing) < goal and worker.running():
                assert time.monotonic() < deadline, "the workers stopped delivering"
                time.sleep(0.002)
            time.sleep(pause)  # a seeded random point in the stream
            if worker.kill():
                kills += 1
            else:  # it ran out of due work: the rest is held by a killed worker's leases
                assert worker.exit_code == 0, worker.stderr()
                time.sleep(0.05)
        assert 0 < _arrived(housing) < REFERRALS  # the kills really cut deliveries short
        # Restarted for good, two side by side; again if a retry was left for later.
        for _ in range(10):
            if states(db).get("delivered", 0) == REFERRALS:
                break
            _wait_until_all_due(db)
            last = [workers.start(), workers.start()]
            for worker in last:
                code, err = worker.finish(PATIENCE)
                assert code == 0, err
    finally:
        workers.close()
    assert states(db) == {"delivered": REFERRALS}
    counts = received(housing)
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}, "a referral arrived more than once"
