"""SIGTERM to ``healthy-homes serve``: no new work, in-flight deliveries finish within the grace
period or go back to the outbox at once, exit 0.

A real ``serve`` process (one practice, one housing service slowed to answer each
referral after a delay) with its operations endpoint: ready while it runs; SIGTERM
lands while deliveries are in flight.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from healthy_homes.mock_server.pytest_plugin import MockFhirFactory
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry
from tests.delivery.helpers import received, states
from tests.delivery.seed import SERVICE_ID, enqueue

REFERRALS = 12
BATCH = 4
ROOT = Path(__file__).parents[2]


def _config(path: Path, db: Database, practice_url: str, housing_url: str, grace: float) -> Path:
    config = path / "hh.toml"
    config.write_text(
        f"""
[storage]
url = "{db.url}"

[[practices]]
ods_code = "A12345"
name = "Practice"
fhir_base_url = "{practice_url}"

[[housing_services]]
id = "{SERVICE_ID}"
name = "Housing"
fhir_base_url = "{housing_url}"

[delivery]
batch_size = {BATCH}
concurrency = {BATCH}
interval_seconds = 0.2
lease_seconds = 120
send_timeout_seconds = 60

[ops]
port = 0
metrics_token = "t"
shutdown_grace_seconds = {grace}
"""
    )
    return config


def _entries(db: Database) -> list[OutboxEntry]:
    with db.session() as session:
        return list(session.exec(select(OutboxEntry)))


def _serve_until_in_flight(config: Path, db: Database) -> tuple[subprocess.Popen[str], int, int]:
    """Start serve, see it ready, wait for sends in flight, SIGTERM: (process, done, in flight)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "healthy_homes", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    url = None
    for line in process.stdout:
        found = re.search(r"operations endpoint: (http://\S+)/healthz", line)
        if found:
            url = found.group(1)
            break
    assert url, process.stderr.read() if process.stderr else ""
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    while states(db).get("in_flight", 0) == 0:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    now = states(db)
    process.send_signal(signal.SIGTERM)
    return process, now.get("delivered", 0), now.get("in_flight", 0)


def _sigterm_mid_delivery(
    tmp_path: Path, mock_fhir_factory: MockFhirFactory, latency_ms: int, grace: float
) -> tuple[Database, RunningMockServer, int, int]:
    """A serve process with queued referrals and a slow receiver, stopped mid-delivery.

    Returns the store, the receiver, and what was delivered and in flight at SIGTERM.
    """
    db = Database(f"sqlite:///{tmp_path / 'serve.db'}")
    db.upgrade()
    practice = mock_fhir_factory(patients=20, seed=4)
    housing = mock_fhir_factory(mode="housing")
    faults = {"rules": [f"*:latency={latency_ms}"]}
    httpx.put(f"{housing.url}/admin/faults", json=faults).raise_for_status()
    enqueue(db, REFERRALS, datetime.now(UTC))
    config = _config(tmp_path, db, practice.base_url, housing.base_url, grace=grace)
    process, done, flying = _serve_until_in_flight(config, db)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    assert out.rstrip().endswith("stopped")
    return db, housing, done, flying


@pytest.mark.e2e
def test_sigterm_lets_sends_in_flight_finish_and_claims_nothing_more(
    tmp_path: Path, mock_fhir_factory
) -> None:
    db, housing, done, flying = _sigterm_mid_delivery(tmp_path, mock_fhir_factory, 1500, 60)

    after = states(db)
    assert "in_flight" not in after  # every send in flight was finished
    # Those in flight at SIGTERM were delivered; at most one more batch was claimed in the
    # instant between reading the outbox and the signal; nothing after.
    assert done + flying <= after["delivered"] <= done + flying + BATCH
    assert after["delivered"] + after.get("pending", 0) == REFERRALS
    untouched = [e for e in _entries(db) if e.state == "pending"]
    assert untouched and all(e.attempts == 0 for e in untouched)
    assert sum(received(housing).values()) == after["delivered"]
    db.dispose()


@pytest.mark.e2e
def test_sigterm_past_the_grace_period_releases_the_leases_at_once(
    tmp_path: Path, mock_fhir_factory
) -> None:
    # Each send takes far longer than the grace period.
    db, _, _, flying = _sigterm_mid_delivery(tmp_path, mock_fhir_factory, 20000, 0.5)

    entries = _entries(db)
    assert not [e for e in entries if e.state == "in_flight"]
    released = [e for e in entries if e.state == "pending" and e.attempts > 0]
    assert len(released) >= flying > 0  # cut short, and due again now, not after the lease
    assert all(e.lease_owner is None and e.lease_expires_at is None for e in released)
    assert states(db) == {"pending": REFERRALS}  # nothing lost, nothing half-done
    db.dispose()
