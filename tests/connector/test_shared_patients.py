"""Patients on several registers: each status is looked up once a run, and every register uses it.

Registers are read side by side and share their status lookups, so one register may
end its read before the lookup another started for a shared patient has been
answered; the run must still leave that patient where their status puts them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector.run import run_once
from healthy_homes.connector.sink import ConditionSink
from healthy_homes.registers.definitions import resolve_registers
from healthy_homes.store.db import Database
from tests.connector.helpers import (
    NOW,
    condition,
    memberships,
    practice,
    practice_server,
    register_state,
    rest,
    settings,
)

COPD = "13645005"
ASTHMA = "195967001"


def _adults(server: Any, count: int) -> list[dict[str, Any]]:
    """Alive, registered adults with no Condition yet, from the first page of Patients."""
    with rest(server) as http:
        bundle = http.get("Patient", params={"_count": "200"}).raise_for_status().json()
        coded = http.get("Condition", params={"_count": "1000"}).raise_for_status().json()
    taken = {e["resource"]["subject"]["reference"] for e in coded.get("entry", [])}
    found = [
        e["resource"]
        for e in bundle["entry"]
        if not e["resource"].get("deceasedDateTime")
        and e["resource"].get("active") is not False
        and e["resource"]["birthDate"] < "2000-01-01"
        and f"Patient/{e['resource']['id']}" not in taken
    ]
    assert len(found) >= count
    return found[:count]


@pytest.mark.parametrize("page_size", [10, 200])
def test_a_patient_on_two_registers_is_on_both_or_neither_as_their_status_says(
    db: Database, page_size: int
) -> None:
    server = practice_server(patients=300, seed=7)
    try:
        alive, dead, gone = (p["id"] for p in _adults(server, 3))
        with rest(server) as http:
            for patient_id, change in ((dead, "deceasedDateTime"), (gone, "active")):
                patient = http.get(f"Patient/{patient_id}").json()
                patient[change] = "2026-11-01T10:00:00Z" if change.startswith("deceased") else False
                http.put(f"Patient/{patient_id}", json=patient).raise_for_status()
            for patient_id in (alive, dead, gone):
                for code in (COPD, ASTHMA):
                    http.post("Condition", json=condition(patient_id, code)).raise_for_status()
        config = settings(db, practice(server), page_size=page_size)
        report = asyncio.run(run_once(config, db, FixedClock(NOW), kind="full"))
        [run] = report.practices
        assert run.error is None, run.error

        on = {(register, patient) for register, patient, _ in memberships(db)}
        assert {("copd", alive), ("asthma", alive)} <= on
        assert not {(r, p) for r, p in on if p in (dead, gone)}
        # Each register holds both Conditions of the two who left: only membership differs.
        stored = {(c[0], c[2]) for c in register_state(db)["conditions"]}
        assert {(r, p) for r in ("copd", "asthma") for p in (dead, gone)} <= stored
    finally:
        server.stop()


def test_a_full_read_names_the_patients_whose_status_it_had_to_assume(db: Database) -> None:
    copd = next(
        r for r in resolve_registers(settings(db), practice("http://x")) if r.name == "copd"
    )
    found = [{**condition(p, COPD), "id": f"c-{p}"} for p in ("p1", "p2", "p3")]

    sink = ConditionSink(db, "A12345", copd, NOW, full=True)
    sink.add(found)
    sink.finish(delete_unseen=True, known={"p1": True, "p2": False})
    # p3's status was not answered in this run: its membership used the stored one.
    assert sink.assumed == {"p3"}
    assert {p for _, p, _ in memberships(db)} == {"p1", "p3"}
