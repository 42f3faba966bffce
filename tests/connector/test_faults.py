"""Acceptance: with 20% of requests failing, the synced registers equal the fault-free ones."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import Settings
from healthy_homes.connector.run import run_once
from healthy_homes.store.db import Database
from tests.connector.helpers import (
    FAULT_POLICY,
    NOW,
    no_sleep,
    practice,
    practice_server,
    register_state,
    rest,
    settings,
)

pytestmark = pytest.mark.e2e

#: About one request in five fails (1 - 0.93 * 0.95**3 = 0.20); duplicates come on top.
FAULTS = {
    "seed": 11,
    "rules": [
        "*:status=503,rate=0.07",
        "*:status=429,retry-after=1,rate=0.05",
        "*:reset,rate=0.05",
        "*:truncate,rate=0.05",
        "*:duplicate=3,rate=0.3",
    ],
}


def _run(config: Settings, db: Database, kind: str = "auto") -> None:
    report = asyncio.run(
        run_once(config, db, FixedClock(NOW), kind=kind, sleep=no_sleep, policy=FAULT_POLICY)
    )
    assert report.failed == [], [r.error for r in report.failed]


def _someone_leaves_copd(server, source: str, db: Database) -> str:
    """The practice takes one patient off COPD: resolves the diagnosis, or edits the Group."""
    with rest(server) as http:
        if source == "group":
            group = http.get("Group/register-copd").raise_for_status().json()
            member = next(m for m in group["member"] if not m.get("inactive"))
            member["inactive"] = True
            http.put("Group/register-copd", json=group).raise_for_status()
            return member["entity"]["reference"].split("/")[1]
        copd = sorted(c for c in register_state(db)["conditions"] if c[0] == "copd")
        _, condition_id, patient_id, _, _ = copd[0]
        resource = http.get(f"Condition/{condition_id}").raise_for_status().json()
        resource["clinicalStatus"]["coding"][0]["code"] = "resolved"
        resource["abatementDateTime"] = "2026-11-01"
        http.put(f"Condition/{condition_id}", json=resource).raise_for_status()
        return patient_id


def _two_dbs(tmp_path) -> tuple[Database, Database]:
    dbs = []
    for name in ("clean", "faulty"):
        db = Database(f"sqlite:///{tmp_path / name}.db")
        db.upgrade()
        dbs.append(db)
    return dbs[0], dbs[1]


@pytest.mark.parametrize("source", ["condition", "group", "bulk"])
def test_faults_change_nothing_in_the_synced_state(tmp_path, source: str) -> None:
    server = practice_server(patients=400, seed=5)
    clean, faulty = _two_dbs(tmp_path)
    admin = httpx.Client(base_url=server.url)
    try:
        config_clean = settings(clean, practice(server, register_source=source), page_size=25)
        config_faulty = settings(faulty, practice(server, register_source=source), page_size=25)
        _run(config_clean, clean, "full")
        admin.put("/admin/faults", json=FAULTS).raise_for_status()
        _run(config_faulty, faulty, "full")
        admin.delete("/admin/faults").raise_for_status()
        assert register_state(faulty) == register_state(clean)
        assert register_state(clean)["members"]

        # A change at the practice, then an incremental pass of each, the faulty one under faults.
        patient_id = _someone_leaves_copd(server, source, clean)
        _run(config_clean, clean)
        admin.put("/admin/faults", json=FAULTS).raise_for_status()
        _run(config_faulty, faulty)
        report = admin.get("/admin/faults").json()
        assert register_state(faulty) == register_state(clean)
        left = {(m[0], m[1]) for m in register_state(clean)["members"] if not m[2]}
        assert ("copd", patient_id) in left
        fired = {rule["kind"]: rule["fired"] for rule in report["rules"]}
        assert fired["status"] > 0 and fired["reset"] > 0
    finally:
        admin.close()
        server.stop()
        clean.dispose()
        faulty.dispose()
