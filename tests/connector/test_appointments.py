"""Appointment watch: today's and tomorrow's booked appointments of register patients."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.connector.appointments import flagged_with_appointment_today
from healthy_homes.connector.run import run_once
from healthy_homes.connector.service import ConnectorService
from healthy_homes.fhir.resources import parse_instant
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord, WatchedAppointment
from tests.connector.helpers import NOW, memberships, practice, practice_server, rest, settings

pytestmark = pytest.mark.e2e


def _watched(db: Database) -> dict[str, WatchedAppointment]:
    with db.session() as session:
        return {a.appointment_id: a for a in session.exec(select(WatchedAppointment))}


def test_watch_keeps_register_patients_booked_today_or_tomorrow(db: Database) -> None:
    server = practice_server(patients=400, seed=7)
    clock = FixedClock(NOW)
    config = settings(db, practice(server))
    try:
        report = asyncio.run(run_once(config, db, clock))
        [run] = report.practices
        assert run.appointments is not None and run.appointments.watched > 0
        members = {p for _, p, _ in memberships(db)}
        zone = config.sync.zone
        start = NOW.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        with rest(server) as http:
            bundle = http.get("Appointment", params={"_count": "1000"}).json()
        expected = {}
        for entry in bundle["entry"]:
            appt = entry["resource"]
            when = parse_instant(appt["start"])
            patient = appt["participant"][0]["actor"]["reference"].split("/")[1]
            if (
                start <= when < start + timedelta(days=2)
                and appt["status"] in ("booked", "arrived", "checked-in")
                and patient in members
            ):
                expected[appt["id"]] = patient
        watched = _watched(db)
        assert {a: w.patient_id for a, w in watched.items()} == expected

        # Cancelled at the practice: gone at the next watch.
        cancelled = sorted(watched)[0]
        with rest(server) as http:
            appt = http.get(f"Appointment/{cancelled}").json()
            appt["status"] = "cancelled"
            http.put(f"Appointment/{cancelled}", json=appt).raise_for_status()

        async def watch() -> None:
            async with ConnectorService(config, db, clock) as service:
                again = await service.run("A12345", "appointments")
                assert again.appointments is not None and again.appointments.removed == 1

        asyncio.run(watch())
        assert cancelled not in _watched(db)

        # The pop-up's question: who that is flagged comes in today?
        with db.session() as session:
            flagged = {f.patient_id for f in session.exec(select(FlagRecord))}
        today = flagged_with_appointment_today(db, "A12345", clock, zone)
        wanted = {
            w.patient_id
            for w in _watched(db).values()
            if w.patient_id in flagged and w.start < start + timedelta(days=1)
        }
        assert wanted and {t.patient_id for t in today} == wanted
        assert [t.start for t in today] == sorted(t.start for t in today)
        tomorrow = FixedClock(NOW + timedelta(days=1))
        later = {
            t.appointment_id for t in flagged_with_appointment_today(db, "A12345", tomorrow, zone)
        }
        assert later.isdisjoint({t.appointment_id for t in today})
    finally:
        server.stop()
