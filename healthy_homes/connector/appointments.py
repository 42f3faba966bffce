"""Appointment watch: today's and tomorrow's booked appointments of register patients.

Kept minimal (appointment id, patient id, start, status) so the pop-up can find the
flagged patients who are coming in, and flags are ready before they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.pages import fhir_instant
from healthy_homes.connector.reports import AppointmentReport
from healthy_homes.connector.state import APPOINTMENTS, record_success
from healthy_homes.fhir.resources import parse_instant, reference_id
from healthy_homes.registers.membership import member_ids
from healthy_homes.registers.statements import table_of, upsert
from healthy_homes.store.db import Database
from healthy_homes.store.models import OPEN_FLAG_STATUSES, FlagRecord, WatchedAppointment

WATCHED_STATUSES = ("booked", "arrived", "checked-in")
WATCH_DAYS = 2


def day_start(clock: Clock, zone: ZoneInfo, offset: int = 0) -> datetime:
    """Local midnight ``offset`` days from today, as an aware datetime."""
    today = clock.now().astimezone(zone).date() + timedelta(days=offset)
    return datetime.combine(today, time(0), tzinfo=zone)


async def watch_appointments(ctx: PracticeContext) -> AppointmentReport:
    """Store today's and tomorrow's appointments of register patients; drop stale ones."""
    zone = ctx.sync.zone
    start, end = day_start(ctx.clock, zone), day_start(ctx.clock, zone, WATCH_DAYS)
    with ctx.db.session() as session:
        members = member_ids(session, ctx.ods)
    params: dict[str, str | list[str]] = {
        "date": ["ge" + fhir_instant(start), "lt" + fhir_instant(end)],
        "status": ",".join(WATCHED_STATUSES),
        "_count": ctx.page_size,
    }
    report = AppointmentReport(ctx.ods)
    now = ctx.clock.now()
    rows: dict[str, dict[str, object]] = {}
    async for appointment in ctx.client.search("Appointment", params):
        report.seen += 1
        when = parse_instant(appointment.get("start"))
        status = appointment.get("status")
        # Checked here too: a server that ignores a parameter must not widen the watch.
        if when is None or status not in WATCHED_STATUSES or not start <= when < end:
            continue
        for participant in appointment.get("participant") or []:
            patient = reference_id(participant.get("actor"), "Patient")
            if patient in members and appointment.get("id"):
                rows[str(appointment["id"])] = {
                    "practice_ods": ctx.ods,
                    "appointment_id": str(appointment["id"]),
                    "patient_id": patient,
                    "start": when,
                    "status": status,
                    "updated_at": now,
                }
                break
    ctx.report(APPOINTMENTS, report.seen)
    table = table_of(WatchedAppointment)
    with ctx.db.session() as session:
        upsert(
            session,
            table,
            list(rows.values()),
            ("practice_ods", "appointment_id"),
            ("patient_id", "start", "status", "updated_at"),
        )
        # Cancelled, moved away or past: whatever the search no longer returns goes.
        stale = session.exec(
            select(WatchedAppointment.appointment_id).where(
                WatchedAppointment.practice_ods == ctx.ods,
            )
        ).all()
        gone = [a for a in stale if a not in rows]
        if gone:
            session.execute(
                delete(table).where(
                    table.c.practice_ods == ctx.ods, table.c.appointment_id.in_(gone)
                )
            )
        record_success(
            session, ctx.ods, APPOINTMENTS, source="appointment", watermark=None, now=now, full=True
        )
    report.watched, report.removed = len(rows), len(gone)
    return report


@dataclass(frozen=True)
class FlaggedAppointment:
    """A patient with an open flag who has an appointment today."""

    patient_id: str
    flag_id: str
    appointment_id: str
    start: datetime
    status: str


def flagged_with_appointment_today(
    db: Database, practice: str, clock: Clock, zone: ZoneInfo
) -> list[FlaggedAppointment]:
    """Flagged patients with an appointment today (practice local time), earliest first."""
    start, end = day_start(clock, zone), day_start(clock, zone, 1)
    with db.session() as session:
        rows = session.exec(
            select(WatchedAppointment, FlagRecord)
            .join(
                FlagRecord,
                (col(FlagRecord.patient_id) == col(WatchedAppointment.patient_id))
                & (col(FlagRecord.practice_ods) == col(WatchedAppointment.practice_ods)),
            )
            .where(
                WatchedAppointment.practice_ods == practice,
                col(WatchedAppointment.start) >= start,
                col(WatchedAppointment.start) < end,
                col(FlagRecord.status).in_([s.value for s in OPEN_FLAG_STATUSES]),
            )
            .order_by(col(WatchedAppointment.start))
        ).all()
    return [
        FlaggedAppointment(a.patient_id, f.id, a.appointment_id, a.start, a.status) for a, f in rows
    ]
