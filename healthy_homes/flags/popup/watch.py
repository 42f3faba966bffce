"""Which flagged patients are in the building: today's arrivals joined with open flags.

FHIR R4 Appointment has no "in progress" status: ``arrived`` and ``checked-in`` are
the states a practice system uses while the patient is there.

The connector's appointment watch already knows which flagged patients have an
appointment today (:func:`~healthy_homes.connector.appointments.flagged_with_appointment_today`);
while it is fresh, only those appointments are read back, by id, for their live status:
nobody else's appointments are fetched. When the watch is missing or stale (the
connector is not running), today's arrived appointments are searched instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.connector.appointments import flagged_with_appointment_today
from healthy_homes.connector.state import APPOINTMENTS, load_states
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.resources import parse_instant, reference_id
from healthy_homes.flags.transitions import OPEN, showable
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord

PRESENT_STATUSES = ("arrived", "checked-in")
#: An appointment watch older than this is not trusted to know today's appointments.
DEFAULT_WATCH_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class Arrival:
    """A patient with an open flag whose appointment today is arrived or checked in."""

    flag_id: str
    patient_id: str
    appointment_id: str
    start: datetime | None
    status: str
    practitioners: frozenset[str]


def today_bounds(clock: Clock, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight today and tomorrow."""
    day = clock.now().astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, start + timedelta(days=1)


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


async def present_appointments(client: FhirClient, clock: Clock, zone: ZoneInfo) -> list[JSON]:
    """Today's appointments whose patient has arrived, as the practice server reports them."""
    start, end = today_bounds(clock, zone)
    params: dict[str, str | list[str]] = {
        "date": ["ge" + _instant(start), "lt" + _instant(end)],
        "status": ",".join(PRESENT_STATUSES),
        "_count": "200",
    }
    found = []
    async for appointment in client.search("Appointment", params):
        when = parse_instant(appointment.get("start"))
        # Checked again here: a server that ignores a parameter must not widen the list.
        if appointment.get("status") in PRESENT_STATUSES and (when is None or start <= when < end):
            found.append(appointment)
    return found


def _participants(appointment: JSON) -> tuple[str | None, frozenset[str]]:
    patient, practitioners = None, set()
    for participant in appointment.get("participant") or []:
        actor = participant.get("actor")
        patient = patient or reference_id(actor, "Patient")
        practitioner = reference_id(actor, "Practitioner")
        if practitioner:
            practitioners.add(f"Practitioner/{practitioner}")
    return patient, frozenset(practitioners)


def open_flags(db: Database, practice: str, patients: set[str], clock: Clock) -> dict[str, str]:
    """patient id -> id of their newest flag that may be shown now."""
    if not patients:
        return {}
    with db.session() as session:
        flags = session.exec(
            select(FlagRecord)
            .where(
                FlagRecord.practice_ods == practice,
                col(FlagRecord.patient_id).in_(sorted(patients)),
                col(FlagRecord.status).in_(sorted(OPEN)),
            )
            .order_by(col(FlagRecord.created_at).desc())
        ).all()
    now = clock.now().timestamp()
    chosen: dict[str, str] = {}
    for flag in flags:
        if flag.patient_id not in chosen and showable(flag, now):
            chosen[flag.patient_id] = flag.id
    return chosen


def watch_is_fresh(db: Database, practice: str, clock: Clock, max_age: timedelta) -> bool:
    """The connector watched this practice's appointments recently, and it worked."""
    state = load_states(db, practice).get(APPOINTMENTS)
    if state is None or state.last_run_at is None or state.last_error:
        return False
    return clock.now() - state.last_run_at <= max_age


async def watched_appointments(
    client: FhirClient, db: Database, practice: str, clock: Clock, zone: ZoneInfo
) -> list[JSON]:
    """Live state of today's appointments of flagged patients, as the watch lists them."""
    ids = sorted(
        {w.appointment_id for w in flagged_with_appointment_today(db, practice, clock, zone)}
    )
    if not ids:
        return []
    params: dict[str, str | list[str]] = {"_id": ",".join(ids), "_count": str(len(ids))}
    return [
        appointment
        async for appointment in client.search("Appointment", params)
        if appointment.get("status") in PRESENT_STATUSES
    ]


async def arrivals(
    client: FhirClient,
    db: Database,
    practice: str,
    clock: Clock,
    zone: ZoneInfo,
    *,
    watch_max_age: timedelta = DEFAULT_WATCH_MAX_AGE,
) -> dict[str, Arrival]:
    """flag id -> arrival, for every flagged patient who is in the building now."""
    if watch_is_fresh(db, practice, clock, watch_max_age):
        present = await watched_appointments(client, db, practice, clock, zone)
    else:
        present = await present_appointments(client, clock, zone)
    by_patient: dict[str, tuple[JSON, frozenset[str]]] = {}
    for appointment in present:
        patient, practitioners = _participants(appointment)
        if patient and appointment.get("id"):
            by_patient.setdefault(patient, (appointment, practitioners))
    flags = open_flags(db, practice, set(by_patient), clock)
    found = {}
    for patient, flag_id in flags.items():
        appointment, practitioners = by_patient[patient]
        found[flag_id] = Arrival(
            flag_id=flag_id,
            patient_id=patient,
            appointment_id=str(appointment["id"]),
            start=parse_instant(appointment.get("start")),
            status=str(appointment.get("status")),
            practitioners=practitioners,
        )
    return found
