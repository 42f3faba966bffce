"""Acceptance: changes made during a sync are picked up by the next incremental run."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.connector.run import run_once
from healthy_homes.connector.state import load_states
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord, FlagStatus
from tests.connector.helpers import (
    NOW,
    condition,
    live_patient,
    memberships,
    practice,
    practice_server,
    register_state,
    rest,
    settings,
)

pytestmark = pytest.mark.e2e


def _members(db: Database) -> set[tuple[str, str]]:
    return {(r, p) for r, p, _ in memberships(db)}


def _sync(db: Database, server, kind: str = "auto", progress=None, ahead: float = 0) -> Any:
    config = settings(db, practice(server), page_size=20)
    clock = FixedClock(NOW + timedelta(hours=ahead))
    report = asyncio.run(run_once(config, db, clock, kind=kind, progress=progress))
    [run] = report.practices
    assert run.error is None, run.error
    return run


def _flags(db: Database) -> dict[str, FlagRecord]:
    with db.session() as session:
        return {f.patient_id: f for f in session.exec(select(FlagRecord))}


def test_changes_during_a_sync_are_caught_by_the_next_incremental_run(tmp_path) -> None:
    server = practice_server(patients=300, seed=7)
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    db.upgrade()
    try:
        # Who is on what before anything changes, read independently into a second store.
        before_db = Database(f"sqlite:///{tmp_path / 'before.db'}")
        before_db.upgrade()
        _sync(before_db, server)
        before = register_state(before_db)
        copd_rows = [c for c in before["conditions"] if c[0] == "copd"]
        single = next(c for c in copd_rows if sum(d[2] == c[2] for d in copd_rows) == 1)
        flagged = sorted(_flags(before_db))
        dying = next(p for p in flagged if p != single[2])
        newcomer = live_patient(server, not_in={c[2] for c in copd_rows} | {dying})
        before_db.dispose()

        written: list[str] = []

        def write_during_paging(practice_ods: str, stream: str, count: int) -> None:
            # The practice keeps working while we page through the COPD register.
            if stream != "copd" or written:
                return
            with rest(server) as http:
                http.post(
                    "Condition", json=condition(newcomer["id"], "185086009")
                ).raise_for_status()
                resolved = http.get(f"Condition/{single[1]}").json()
                resolved["clinicalStatus"]["coding"][0]["code"] = "resolved"
                resolved["abatementDateTime"] = "2026-11-20"
                http.put(f"Condition/{single[1]}", json=resolved).raise_for_status()
                patient = http.get(f"Patient/{dying}").json()
                patient["deceasedDateTime"] = "2026-11-23T14:00:00Z"
                http.put(f"Patient/{dying}", json=patient).raise_for_status()
            written.append("done")

        # Our clock runs two hours ahead of the practice server's: watermarks must come
        # from the server, or the changes stamped by it in between would be skipped.
        first = _sync(db, server, progress=write_during_paging, ahead=2)
        assert written and set(first.sync.read_mode.values()) == {"full"}

        second = _sync(db, server, ahead=2)
        assert set(second.sync.read_mode.values()) == {"incremental"}
        members = _members(db)
        assert ("copd", newcomer["id"]) in members  # new diagnosis (a descendant concept)
        assert ("copd", single[2]) not in members  # its only COPD diagnosis resolved
        assert not any(p == dying for _, p in members)  # died: off every register

        # Nothing was missed: a full read from scratch agrees with the incremental state.
        fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
        fresh.upgrade()
        _sync(fresh, server, kind="full")
        assert _members(fresh) == members
        assert register_state(fresh)["conditions"] == register_state(db)["conditions"]
        fresh.dispose()
        states = load_states(db, "A12345")
        assert states["copd"].watermark is not None
        assert states["copd"].watermark < NOW + timedelta(minutes=1)
    finally:
        server.stop()
        db.dispose()


def test_a_second_diagnosis_keeps_a_patient_on_when_one_resolves(db: Database) -> None:
    server = practice_server(patients=300, seed=7)
    try:
        _sync(db, server)
        copd = [c for c in register_state(db)["conditions"] if c[0] == "copd"]
        _, condition_id, patient_id, _, _ = copd[0]
        with rest(server) as http:
            http.post("Condition", json=condition(patient_id, "87433001")).raise_for_status()
        _sync(db, server)
        with rest(server) as http:
            resolved = http.get(f"Condition/{condition_id}").json()
            resolved["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
            http.put(f"Condition/{condition_id}", json=resolved).raise_for_status()
        run = _sync(db, server)
        assert run.sync.read_mode["copd"] == "incremental"
        assert ("copd", patient_id) in _members(db)
        rows = {c[1] for c in register_state(db)["conditions"] if c[2] == patient_id}
        assert condition_id not in rows and len(rows) >= 1
    finally:
        server.stop()


def test_a_death_between_runs_retires_the_flag_at_the_next_incremental_run(
    db: Database,
) -> None:
    server = practice_server(patients=300, seed=7)
    try:
        _sync(db, server)
        dying = sorted(_flags(db))[0]
        with rest(server) as http:
            patient = http.get(f"Patient/{dying}").json()
            patient["deceasedDateTime"] = "2026-11-23T14:00:00Z"
            http.put(f"Patient/{dying}", json=patient).raise_for_status()
        run = _sync(db, server)
        assert set(run.sync.read_mode.values()) == {"incremental"}
        assert run.sync.flags_retired == 1
        assert not any(p == dying for _, p in _members(db))
        flag = _flags(db)[dying]
        assert flag.status == FlagStatus.RETIRED
        with rest(server) as http:
            assert http.get(f"Flag/{flag.fhir_flag_id}").json()["status"] == "inactive"
    finally:
        server.stop()


def test_full_reconciliation_drops_deregistered_patients_and_retires_their_flags(
    db: Database,
) -> None:
    server = practice_server(patients=300, seed=7)
    try:
        _sync(db, server)
        leaver = sorted(_flags(db))[0]
        with rest(server) as http:
            patient = http.get(f"Patient/{leaver}").json()
            patient["active"] = False
            http.put(f"Patient/{leaver}", json=patient).raise_for_status()
        run = _sync(db, server, kind="full")
        assert set(run.sync.read_mode.values()) == {"full"}
        assert run.sync.flags_retired >= 1
        assert not any(p == leaver for _, p in _members(db))
        assert _flags(db)[leaver].status == FlagStatus.RETIRED
    finally:
        server.stop()


def test_an_incremental_poll_without_changes_reads_one_page_per_register(db: Database) -> None:
    server = practice_server(patients=300, seed=7)
    try:
        _sync(db, server)
        run = _sync(db, server)
        assert run.sync.conditions_scanned == 0  # the server's records are older than the window
        assert run.sync.patients_polled == 0
        assert run.flags is not None and run.flags.raised == []
    finally:
        server.stop()
