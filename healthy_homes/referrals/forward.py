"""Forwarding a referral to the housing service, behind the consent gate.

:func:`send_referral` is the per-referral step the delivery worker
(``connector/delivery``) calls with the service's transport: it re-checks consent at
the moment of sending and hands the transport an envelope. :func:`forward_referral`
sends one referral directly over FHIR (the clinician's "consent and refer" path and
the demo) and closes its outbox entry too.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlmodel import Session, select

from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.consent.gate import require_active_consent
from healthy_homes.errors import DeliveryError, FhirError, ReferralError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.resources import reference_id
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.referrals.transports.base import (
    DeliveryReceipt,
    ReferralEnvelope,
    Transport,
)
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, OutboxState, Referral, ReferralStatus

log = logging.getLogger(__name__)


def _task_location(response: JSON) -> str | None:
    for entry in response.get("entry") or []:
        location = (entry.get("response") or {}).get("location") or ""
        if location.startswith("Task/") or "/Task/" in location:
            parts = location.split("/_history")[0].split("/")
            return f"Task/{parts[-1]}"
    return None


def envelope_for(
    db: Database, referral_id: str, service: HousingServiceConfig
) -> ReferralEnvelope | None:
    """The envelope to send now, behind the consent gate; None if nothing is to be sent.

    Raises :class:`~healthy_homes.errors.ConsentRequiredError` unless the referral's
    consent is in force at this moment. Counts the attempt first, so a withdrawal that
    races this send knows to recall the referral from the housing service.
    """
    with db.session() as session:
        referral = session.get(Referral, referral_id)
        if referral is None or referral.status in (ReferralStatus.SENT, ReferralStatus.CANCELLED):
            return None
        consent = require_active_consent(
            session,
            referral.consent_id,
            patient_id=referral.patient_id,
            practice=referral.practice_ods,
            referral=referral.id,
        )
        referral.attempts += 1
        session.add(referral)
    try:
        dataset = MinimumDataset.model_validate(referral.dataset)
    except ValidationError:
        # Named by field only: the values are patient data.
        raise ReferralError(
            "referral dataset is not a valid minimum dataset; it cannot be sent",
            practice=referral.practice_ods,
            referral=referral.id,
        ) from None
    return ReferralEnvelope(
        referral_id=referral.id,
        practice_ods=referral.practice_ods,
        dataset=dataset,
        consent=consent,
        service=service,
        authored=referral.created_at,
        # Stable per referral, so every attempt and every answer share one conversation.
        correlation_id=referral.id,
    )


async def send_referral(
    db: Database, referral_id: str, transport: Transport, service: HousingServiceConfig
) -> DeliveryReceipt | None:
    """Send one referral over ``transport`` if its consent is in force right now.

    Returns the receipt, or None when the referral was already sent or cancelled.
    The caller records the outcome (``connector/delivery/outbox.py``).
    """
    envelope = envelope_for(db, referral_id, service)
    if envelope is None:
        return None
    return await transport.deliver(envelope)


async def forward_referral(
    db: Database,
    housing_client: FhirClient,
    referral_id: str,
    service: HousingServiceConfig,
    clock: Clock,
) -> Referral:
    """Send one referral; refuse unless its consent is active at this very moment."""
    with db.session() as session:
        referral = session.get(Referral, referral_id)
        if referral is None:
            raise ReferralError(f"referral {referral_id} not found")
        if referral.status == ReferralStatus.SENT:
            return referral
        if referral.status == ReferralStatus.CANCELLED:
            raise ReferralError(
                "referral was cancelled", referral=referral_id, practice=referral.practice_ods
            )
        consent = require_active_consent(
            session,
            referral.consent_id,
            patient_id=referral.patient_id,
            practice=referral.practice_ods,
            referral=referral.id,
        )
        referral.attempts += 1
        session.add(referral)
    dataset = MinimumDataset.model_validate(referral.dataset)
    bundle = referral_bundle(
        referral_id=referral.id,
        dataset=dataset,
        consent=consent,
        housing_ods=service.ods_code,
        housing_name=service.name,
        authored=referral.created_at,
    )
    try:
        response = await housing_client.transaction(bundle)
    except FhirError as exc:
        _record_failure(db, referral.id, str(exc))
        raise DeliveryError(
            f"housing service {service.id} did not take the referral: {exc.message}",
            retryable=exc.retryable,
            practice=referral.practice_ods,
            referral=referral.id,
        ) from exc
    task = _task_location(response)
    with db.session() as session:
        row = session.get(Referral, referral.id)
        assert row is not None
        row.status, row.sent_at, row.last_error = ReferralStatus.SENT, clock.now(), None
        row.remote_task_url, row.task_status = task, "requested"
        session.add(row)
        _close_outbox_entry(session, row.id, clock)
        audit_events.disclosure(session, row.id, row, service.id, "direct", clock)
    log.info("referral delivered", extra={"referral": referral.id, "service": service.id})
    return row


def _close_outbox_entry(session: Session, referral_id: str, clock: Clock) -> None:
    entry = session.exec(select(OutboxEntry).where(OutboxEntry.referral_id == referral_id)).first()
    if entry is not None and entry.state not in (OutboxState.DELIVERED, OutboxState.CANCELLED):
        entry.state, entry.lease_owner, entry.lease_expires_at = OutboxState.DELIVERED, None, None
        entry.delivered_at = entry.updated_at = clock.now()
        entry.last_error = None
        session.add(entry)


def _record_failure(db: Database, referral_id: str, error: str) -> None:
    with db.session() as session:
        row = session.get(Referral, referral_id)
        if row is not None:
            row.last_error = error[:500]
            session.add(row)


async def refresh_status(db: Database, housing_client: FhirClient, referral_id: str) -> str | None:
    """Read the housing service's Task and record its status (closing the loop)."""
    with db.session() as session:
        referral = session.get(Referral, referral_id)
        if referral is None or not referral.remote_task_url:
            return None
        task_id = reference_id({"reference": referral.remote_task_url}, "Task")
    if task_id is None:
        return None
    task = await housing_client.read("Task", task_id)
    status = str(task.get("status"))
    with db.session() as session:
        row = session.get(Referral, referral_id)
        assert row is not None
        row.task_status = status
        session.add(row)
    return status
