"""Incremental reading: when a full read is due, and the Patient change poll.

Deaths and deregistrations change the Patient, not the Condition, so a register
read alone would miss them; one ``Patient?_lastUpdated=ge…`` per practice finds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.pages import (
    fhir_instant,
    last_updated,
    later,
    read_ahead,
    server_time,
    split_entries,
)
from healthy_homes.connector.patients import STATUS_ELEMENTS
from healthy_homes.connector.state import PATIENTS
from healthy_homes.registers.conditions import known_patients, write_statuses
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.rules import patient_is_current
from healthy_homes.store.models import SyncState


def needs_full(state: SyncState | None, register: RegisterDefinition, source: str) -> bool:
    """Whether a register must be read in full: never read, rules or source changed."""
    return (
        state is None
        or state.watermark is None
        or state.source != source
        or state.fingerprint != register.fingerprint()
    )


@dataclass
class PatientPoll:
    """Patients whose status changed since the last poll, and the new watermark."""

    watermark: datetime | None
    scanned: int = 0
    changed: set[str] = field(default_factory=set)


async def poll_patients(ctx: PracticeContext, watermark: datetime) -> PatientPoll:
    """Read Patients changed since the watermark; store the status of those we track."""
    params: dict[str, str | list[str]] = {
        "_lastUpdated": "ge" + fhir_instant(watermark - ctx.overlap),
        "_sort": "_lastUpdated",
        "_elements": STATUS_ELEMENTS,
        "_count": ctx.page_size,
    }
    poll = PatientPoll(watermark)
    first_time: datetime | None = None
    newest: datetime | None = None
    pages = 0
    drift = False
    now = ctx.clock.now()
    async for bundle in read_ahead(ctx.client.search_pages("Patient", params)):
        pages += 1
        first_time = first_time or server_time(bundle)
        patients, _ = split_entries(bundle, "Patient")
        poll.scanned += len(patients)
        ctx.report(PATIENTS, len(patients))
        seen = {str(p["id"]): patient_is_current(p) for p in patients if p.get("id")}
        for patient in patients:
            newest = later(newest, last_updated(patient))
        page_newest = max((t for p in patients if (t := last_updated(p))), default=None)
        if first_time and page_newest and page_newest > first_time and pages > 1:
            drift = True
        if not seen:
            continue
        with ctx.db.session() as session:
            tracked = known_patients(session, ctx.ods, seen)
            poll.changed |= write_statuses(
                session, ctx.ods, {p: c for p, c in seen.items() if p in tracked}, now
            )
    if not drift:
        poll.watermark = later(watermark, later(first_time, newest))
    return poll
