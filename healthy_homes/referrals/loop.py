"""The closed loop: the housing service's answer comes back to the practice.

Status arrives per transport: the remote Task polled (FHIR), ``servicerequest-response``
messages (BaRS), the ACK (HL7 v2, recorded at delivery), or the housing team's entry in
the inbox (email; the inbox calls :func:`record_status`). Every change is

1. stored on the referral (``Referral.task_status``), with what the housing team said
   alongside it: why (``Referral.status_reason``, from ``Task.statusReason``, e.g. a
   decline's "No capacity") and what was done (``Referral.outcome``, from ``Task.output``
   or else ``businessStatus``), where the clinician's pages read it;
2. written back to the practice record as a **Task mirror**: a Task in the practice's
   FHIR server carrying our referral identifier, ``for`` the practice's Patient, owner
   the housing service, with the remote status, ``statusReason`` and a readable
   ``businessStatus``. A Task (not the Flag) because the Flag's lifecycle belongs to
   the flag rules, and a Task is what the SDOH closed-loop pattern uses for "what
   happened to this referral"; it is written with conditional create and If-Match, so
   repeats change nothing.

Acknowledgement deadline: a referral sent on day D must be acknowledged by the end of
the N-th working day after D (N = the service's ``ack_working_days``; working days are
Monday to Friday minus the service's ``bank_holidays``; days are counted in the
deployment's time zone). Acknowledged means a person on the housing side acted
(accepted, rejected, started, put on hold, completed, failed, cancelled); with
``receipt_is_acknowledgement`` the receiving system's receipt counts too. The first
check after the deadline raises one ``ack-overdue`` alert (a unique ``alert`` row, so
never twice, even across restarts or two checkers) and marks the mirror overdue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from fhir.resources.R4B.task import Task
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.errors import DeliveryError, FhirError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.resources import to_json
from healthy_homes.fhir.systems import HH_REFERRAL_ID, ODS_ORGANISATION
from healthy_homes.flags.fhir_sync import find_by_identifier, versioned_update
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.referrals.transports.bars import status_from_response
from healthy_homes.referrals.transports.base import DeliveryReceipt, ReferralEnvelope, Transport
from healthy_homes.reporting.facts import set_remote_status
from healthy_homes.store.db import Database
from healthy_homes.store.models import Alert, ConsentRecord, Referral, ReferralStatus

log = logging.getLogger(__name__)

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
LONDON = ZoneInfo("Europe/London")
ALERT_KIND = "ack-overdue"
#: Statuses after which nothing more will change.
FINAL = frozenset({"completed", "cancelled", "rejected", "failed", "entered-in-error"})
#: Statuses that show a person on the housing side has acted on the referral.
ACKNOWLEDGED = frozenset(
    {"accepted", "rejected", "ready", "in-progress", "on-hold", "completed", "failed", "cancelled"}
)
READABLE = {
    None: "Sent; no answer yet",
    "requested": "Sent; waiting for the housing team",
    "received": "Received by the housing service's system",
    "accepted": "Accepted by the housing team",
    "rejected": "Declined by the housing team",
    "in-progress": "Housing team working on it",
    "on-hold": "On hold at the housing team",
    "completed": "Completed by the housing team",
    "failed": "Housing team could not complete it",
    "cancelled": "Cancelled",
}


# -- working days ---------------------------------------------------------------------


def is_working_day(day: date, bank_holidays: Iterable[date] = ()) -> bool:
    """Monday to Friday and not a bank holiday."""
    return day.weekday() < 5 and day not in set(bank_holidays)


def add_working_days(start: date, days: int, bank_holidays: Iterable[date] = ()) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
    holidays = set(bank_holidays)
    day, left = start, days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day, holidays):
            left -= 1
    return day


def ack_due(sent_at: datetime, service: HousingServiceConfig, zone: ZoneInfo = LONDON) -> date:
    """The last day on which the referral may still be acknowledged."""
    sent_day = sent_at.astimezone(zone).date()
    return add_working_days(sent_day, service.ack_working_days, service.bank_holidays)


def is_acknowledged(status: str | None, service: HousingServiceConfig) -> bool:
    """Whether ``status`` counts as the housing side's acknowledgement."""
    if status in ACKNOWLEDGED:
        return True
    return service.receipt_is_acknowledgement and status == "received"


# -- writing back to the practice record ----------------------------------------------


class TaskMirror:
    """The practice-side Task for each referral, in each practice's FHIR server."""

    def __init__(self, clients: Mapping[str, FhirClient], clock: Clock) -> None:
        self.clients = clients
        self.clock = clock

    def _task(
        self,
        referral: Referral,
        service: HousingServiceConfig,
        status: str | None,
        reason: str | None,
        business: str,
    ) -> JSON:
        owner: JSON = {"display": service.name}
        if service.ods_code:
            owner["identifier"] = {"system": ODS_ORGANISATION, "value": service.ods_code}
        task: JSON = {
            "resourceType": "Task",
            "identifier": [{"system": HH_REFERRAL_ID, "value": referral.id}],
            "status": status or "requested",
            "intent": "order",
            "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
            "description": f"Healthy Homes referral to {service.name}",
            "for": {"reference": f"Patient/{referral.patient_id}"},
            "authoredOn": referral.created_at.isoformat(),
            "lastModified": self.clock.now().isoformat(),
            "requester": {
                "identifier": {"system": ODS_ORGANISATION, "value": referral.practice_ods}
            },
            "owner": owner,
            "businessStatus": {"text": business},
        }
        if reason:
            task["statusReason"] = {"text": reason}
        return to_json(Task.model_validate(task))

    async def write(
        self,
        referral: Referral,
        service: HousingServiceConfig,
        *,
        status: str | None,
        reason: str | None = None,
        business: str | None = None,
    ) -> None:
        """Create or update the mirror Task; nothing happens for an unknown practice."""
        client = self.clients.get(referral.practice_ods)
        if client is None:
            return
        wanted = self._task(referral, service, status, reason, business or READABLE.get(status, ""))
        current = await find_by_identifier(client, "Task", HH_REFERRAL_ID, referral.id)
        if current is None:
            await client.create(wanted, if_none_exist=f"identifier={HH_REFERRAL_ID}|{referral.id}")
            return

        def change(found: JSON) -> JSON | None:
            same = all(found.get(k) == wanted.get(k) for k in ("status", "statusReason"))
            if same and found.get("businessStatus") == wanted["businessStatus"]:
                return None
            return {**wanted, "id": found["id"], "meta": found.get("meta", {})}

        await versioned_update(client, "Task", str(current["id"]), change)


# -- status coming back ---------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    """A remote status with what the housing team said about it (their words, or None)."""

    status: str
    reason: str | None = None
    outcome: str | None = None


@runtime_checkable
class TaskReader(Protocol):
    """A transport that can hand over the whole remote Task (FHIR, and email via the inbox)."""

    async def read_task(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> JSON | None:
        """The remote Task, or None if it cannot be found."""
        ...


def _concept_text(concept: JSON) -> str | None:
    if concept.get("text"):
        return str(concept["text"])
    displays = [c.get("display") for c in concept.get("coding") or [] if c.get("display")]
    return "; ".join(str(d) for d in displays) or None


def report_of_task(task: JSON) -> StatusReport | None:
    """A Task's status, ``statusReason`` and outcome (``output`` texts, else ``businessStatus``)."""
    status = task.get("status")
    if not status:
        return None
    reason = _concept_text(task.get("statusReason") or {})
    outputs = [
        text
        for item in task.get("output") or []
        if (text := _concept_text(item.get("valueCodeableConcept") or {}))
    ]
    outcome = "; ".join(outputs) or _concept_text(task.get("businessStatus") or {})
    # The Task is the whole answer: nothing in it means nothing said ("" clears).
    return StatusReport(str(status), reason or "", outcome or "")


async def poll_report(
    transport: Transport, envelope: ReferralEnvelope, receipt: DeliveryReceipt
) -> StatusReport | None:
    """The receiver's status, with its reason and outcome where the transport gives them."""
    if isinstance(transport, TaskReader):
        task = await transport.read_task(envelope, receipt)
        return report_of_task(task) if task else None
    status = await transport.poll_status(envelope, receipt)
    return StatusReport(status) if status else None


@dataclass(frozen=True)
class StatusChange:
    """A referral's remote status moved."""

    referral_id: str
    old: str | None
    new: str
    at: datetime


async def record_status(
    db: Database,
    referral_id: str,
    status: str,
    *,
    service: HousingServiceConfig,
    clock: Clock,
    reason: str | None = None,
    outcome: str | None = None,
    mirror: TaskMirror | None = None,
) -> StatusChange | None:
    """Store a status from any source (poll, response message, inbox); None if it did not move.

    ``reason`` and ``outcome`` are the housing team's words with it: None leaves those
    stored (the source cannot say), "" clears them (the source says there are none).
    The email transport's hook: the housing inbox calls this when the team records
    progress on a referral that came by email.
    """
    with db.session() as session:
        row = session.get(Referral, referral_id)
        if row is None:
            return None
        # None: the source does not say (keep what is stored); "": it says there is none.
        said = {
            name: value[:500] or None
            for name, value in (("status_reason", reason), ("outcome", outcome))
            if value is not None and getattr(row, name) != (value[:500] or None)
        }
        if row.task_status == status and not said:
            return None
        old = row.task_status
        moved = set_remote_status(session, row, status, clock.now())
        for name, value in said.items():
            setattr(row, name, value)
        session.add(row)
    log.info("referral status recorded", extra={"referral": referral_id, "status": status})
    if mirror is not None:
        try:
            await mirror.write(row, service, status=status, reason=row.status_reason)
        except FhirError as exc:  # stored here; the mirror catches up on the next change
            log.warning("practice Task mirror not written: %s", exc, extra={"referral": row.id})
    # Only a move of the status is a change (new words alone are stored, not counted).
    return StatusChange(referral_id, old, status, clock.now()) if moved else None


def referral_id_of(message: JSON) -> str | None:
    """Our referral id in a BaRS response message (its ServiceRequest or Task identifier)."""
    for entry in message.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") in ("ServiceRequest", "Task"):
            for ident in resource.get("identifier") or []:
                if ident.get("system") == HH_REFERRAL_ID and ident.get("value"):
                    return str(ident["value"])
    return None


async def record_bars_response(
    db: Database,
    message: JSON,
    services: Mapping[str, HousingServiceConfig],
    *,
    clock: Clock,
    mirror: TaskMirror | None = None,
) -> StatusChange | None:
    """Record a ``servicerequest-response`` pushed to our reply endpoint (or polled)."""
    referral_id, status = referral_id_of(message), status_from_response(message)
    if referral_id is None or status is None:
        return None
    with db.session() as session:
        row = session.get(Referral, referral_id)
    service = services.get(row.housing_service_id) if row is not None else None
    if service is None:
        return None
    reason: str | None = None
    for entry in message.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Task":
            reason = (resource.get("statusReason") or {}).get("text")
    return await record_status(
        db, referral_id, status, service=service, clock=clock, reason=reason, mirror=mirror
    )


def stored_envelope(
    db: Database, referral: Referral, service: HousingServiceConfig
) -> ReferralEnvelope:
    """The envelope of a referral already sent, as stored (status polls and recalls)."""
    with db.session() as session:
        consent = session.get(ConsentRecord, referral.consent_id)
    assert consent is not None  # a foreign key: the row exists
    return ReferralEnvelope(
        referral_id=referral.id,
        practice_ods=referral.practice_ods,
        dataset=MinimumDataset.model_validate(referral.dataset),
        consent=consent,
        service=service,
        authored=referral.created_at,
        correlation_id=referral.id,
    )


def _open_referrals(db: Database) -> list[Referral]:
    with db.session() as session:
        rows = session.exec(
            select(Referral).where(col(Referral.status) == ReferralStatus.SENT)
        ).all()
    return [r for r in rows if r.task_status not in FINAL]


async def poll_statuses(
    db: Database,
    services: Mapping[str, HousingServiceConfig],
    transports: Mapping[str, Transport],
    *,
    clock: Clock,
    mirror: TaskMirror | None = None,
) -> list[StatusChange]:
    """Ask each sent, unfinished referral's transport for its status; record the changes.

    One referral's failure is logged and skipped; the others carry on.
    """
    changes = []
    for referral in _open_referrals(db):
        service = services.get(referral.housing_service_id)
        transport = transports.get(referral.housing_service_id)
        if service is None or transport is None:
            continue
        receipt = DeliveryReceipt(referral.remote_task_url, referral.task_status)
        try:
            report = await poll_report(transport, stored_envelope(db, referral, service), receipt)
        except DeliveryError as exc:
            log.warning("status poll failed: %s", exc, extra={"referral": referral.id})
            continue
        if report is None:
            continue
        change = await record_status(
            db,
            referral.id,
            report.status,
            service=service,
            clock=clock,
            reason=report.reason,
            outcome=report.outcome,
            mirror=mirror,
        )
        if change is not None:
            changes.append(change)
    return changes


# -- acknowledgement overdue ----------------------------------------------------------


def _raise_once(db: Database, referral: Referral, message: str, now: datetime) -> Alert | None:
    key = f"{ALERT_KIND}:{referral.id}:1"
    try:
        with db.session() as session:
            if session.exec(select(Alert).where(Alert.key == key)).first() is not None:
                return None
            alert = Alert(
                key=key,
                kind=ALERT_KIND,
                subject=referral.id,
                practice_ods=referral.practice_ods,
                message=message,
                created_at=now,
            )
            session.add(alert)
    except IntegrityError:  # another checker raised it first
        return None
    log.error("alert %s: %s", ALERT_KIND, message, extra={"alert": ALERT_KIND})
    return alert


async def check_overdue(
    db: Database,
    services: Sequence[HousingServiceConfig],
    *,
    clock: Clock,
    zone: ZoneInfo = LONDON,
    mirror: TaskMirror | None = None,
    notify: Callable[[Alert], None] | None = None,
) -> list[Alert]:
    """Raise one alert for each sent referral past its acknowledgement deadline."""
    by_id = {s.id: s for s in services}
    today = clock.now().astimezone(zone).date()
    raised = []
    for referral in _open_referrals(db):
        service = by_id.get(referral.housing_service_id)
        if service is None or referral.sent_at is None:
            continue
        if is_acknowledged(referral.task_status, service):
            continue
        due = ack_due(referral.sent_at, service, zone)
        if today <= due:
            continue
        message = (
            f"referral {referral.id} to {service.name} not acknowledged within "
            f"{service.ack_working_days} working days (due {due.isoformat()})"
        )
        alert = _raise_once(db, referral, message, clock.now())
        if alert is None:
            continue
        raised.append(alert)
        if notify is not None:
            notify(alert)
        if mirror is not None:
            try:
                await mirror.write(
                    referral,
                    service,
                    status=referral.task_status,
                    business=f"Not acknowledged by the housing service (due {due.isoformat()})",
                )
            except FhirError as exc:
                log.warning("practice Task mirror not written: %s", exc)
    return raised
