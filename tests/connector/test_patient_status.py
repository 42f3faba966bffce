"""Patient status: stored only for patients who are not current, and never skipped by mistake.

A row in ``patient_status`` means "deceased or deregistered"; no row means current. An
incremental read looks up only patients the register state does not hold yet, so no
patient may be stored before their status is known (a failed read would otherwise
leave them stored, and the retry would take them for looked up).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector import sink
from healthy_homes.connector.run import run_once
from healthy_homes.store.db import Database
from tests.connector.helpers import (
    NOW,
    condition,
    practice,
    practice_server,
    register_state,
    rest,
    settings,
)

pytestmark = pytest.mark.e2e


def _run(db: Database, server: Any, kind: str = "auto", hours: float = 0) -> Any:
    config = settings(db, practice(server), page_size=10)
    clock = FixedClock(NOW + timedelta(hours=hours))
    [run] = asyncio.run(run_once(config, db, clock, kind=kind)).practices
    return run


def _server_statuses(server: Any) -> dict[str, bool]:
    """Every patient's current/not-current status, as the practice server has it."""
    found: dict[str, bool] = {}
    with rest(server) as http:
        bundle = http.get("Patient", params={"_count": "1000"}).raise_for_status().json()
    for entry in bundle["entry"]:
        patient = entry["resource"]
        dead = patient.get("deceasedDateTime") or patient.get("deceasedBoolean")
        found[patient["id"]] = not dead and patient.get("active") is not False
    return found


def test_a_full_sync_stores_a_status_only_for_patients_who_are_not_current(
    tmp_path: Any,
) -> None:
    server = practice_server(patients=300, seed=7)
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    db.upgrade()
    try:
        run = _run(db, server, kind="full")
        assert run.error is None, run.error
        state = register_state(db)
        truth = _server_statuses(server)
        on_registers = {c[2] for c in state["conditions"]}
        not_current = {p for p in on_registers if not truth[p]}
        assert not_current, "the seeded practice should have register patients who died or left"
        assert state["statuses"] == {(p, False) for p in not_current}
        assert not {m[1] for m in state["members"] if m[2]} & not_current
    finally:
        server.stop()
        db.dispose()


def test_a_retry_of_a_failed_incremental_read_does_not_put_a_deceased_patient_on(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Store mid-read after every few Conditions, as a big incremental read would.
    monkeypatch.setattr(sink, "FLUSH_AT", 3)
    server = practice_server(patients=300, seed=7)
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    db.upgrade()
    admin = httpx.Client(base_url=server.url)
    try:
        assert _run(db, server, kind="full").error is None
        known = {c[2] for c in register_state(db)["conditions"]}
        # A patient who died a month ago (in the seeded records) and was never on a
        # register: the full sync had no reason to look them up, and the Patient poll
        # only reads changes since it.
        truth = _server_statuses(server)
        deceased = next(p for p, current in truth.items() if not current and p not in known)
        # Then a COPD code on their record (a record tidied up after death), alongside
        # new diagnoses for two living patients.
        living = [p for p, current in truth.items() if current and p not in known][:2]
        with rest(server) as http:
            for patient in (deceased, *living):
                for code in ("185086009", "13645005"):  # two COPD codes each: pages fill
                    http.post("Condition", json=condition(patient, code)).raise_for_status()

        # The status lookups are refused, so the incremental read fails part way.
        admin.put("/admin/faults", json={"rules": ["Patient:status=400"]}).raise_for_status()
        failed = _run(db, server, hours=1)
        assert failed.error is not None
        admin.delete("/admin/faults").raise_for_status()

        retried = _run(db, server, hours=2)
        assert retried.error is None, retried.error
        assert set(retried.sync.read_mode.values()) == {"incremental"}
        state = register_state(db)
        members = {(m[0], m[1]) for m in state["members"] if m[2]}
        assert ("copd", deceased) not in members
        assert (deceased, False) in state["statuses"]
        assert {("copd", p) for p in living} <= members
    finally:
        admin.close()
        server.stop()
        db.dispose()
