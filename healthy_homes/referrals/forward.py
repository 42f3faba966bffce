"""Forwarding a referral to the housing service, behind the consent gate.

:func:`envelopes_for` is the step the delivery worker (``connector/delivery``) takes
for each claimed batch: it re-checks consent at the moment of sending and builds the
envelopes its transports deliver. :func:`forward_referral` sends one referral at once
(the clinician's "consent and refer" path and the demo) over the same transport the
worker would use, and closes its outbox entry too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
from pydantic import ValidationError
from sqlmodel import Session, col, select

from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.consent.gate import require_active_consent
from healthy_homes.errors import DeliveryError, HealthyHomesError, ReferralError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.resources import reference_id
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.referrals.transports.base import (
    DeliveryReceipt,
    ReferralEnvelope,
    Transport,
    transport_for,
)
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
from healthy_homes.reporting.facts import set_remote_status
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentRecord,
    OutboxEntry,
    OutboxState,
    Referral,
    ReferralStatus,
)

log = logging.getLogger(__name__)

#: What :func:`envelopes_for` found for one referral: the envelope to send now, None if
#: nothing is to be sent (already sent or cancelled), or the error that refuses it.
Prepared = ReferralEnvelope | HealthyHomesError | None


def _envelope(
    session: Session, referral: Referral | None, service: HousingServiceConfig
) -> ReferralEnvelope | None:
    if referral is None or referral.status in (ReferralStatus.SENT, ReferralStatus.CANCELLED):
        return None
    consent = require_active_consent(
        session,
        referral.consent_id,
        patient_id=referral.patient_id,
        practice=referral.practice_ods,
        referral=referral.id,
    )
    try:
        dataset = MinimumDataset.model_validate(referral.dataset)
    except ValidationError:
        # Named by field only: the values are patient data.
        raise ReferralError(
            "referral dataset is not a valid minimum dataset; it cannot be sent",
            practice=referral.practice_ods,
            referral=referral.id,
        ) from None
    referral.attempts += 1
    session.add(referral)
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


def envelopes_for(
    db: Database, wanted: Sequence[tuple[str, HousingServiceConfig]]
) -> dict[str, Prepared]:
    """The envelopes to send now for several referrals, behind the consent gate, in one transaction.

    A referral whose consent is not in force at this moment gets its
    :class:`~healthy_homes.errors.ConsentRequiredError` instead. Counts each attempt
    first, so a withdrawal that races the send knows to recall the referral.
    """
    prepared: dict[str, Prepared] = {}
    with db.session() as session:
        ids = [referral_id for referral_id, _ in wanted]
        referrals = {
            r.id: r for r in session.scalars(select(Referral).where(col(Referral.id).in_(ids)))
        }
        # Loaded together, so the gate's lookups are served by the session (which holds
        # loaded rows only weakly: ``consents`` keeps them in it until the loop is done).
        consent_ids = [r.consent_id for r in referrals.values()]
        query = select(ConsentRecord).where(col(ConsentRecord.id).in_(consent_ids))
        consents = session.scalars(query).all()
        for referral_id, service in wanted:
            try:
                prepared[referral_id] = _envelope(session, referrals.get(referral_id), service)
            except HealthyHomesError as exc:
                prepared[referral_id] = exc
        del consents
    return prepared


def envelope_for(
    db: Database, referral_id: str, service: HousingServiceConfig
) -> ReferralEnvelope | None:
    """The envelope to send now, behind the consent gate; None if nothing is to be sent.

    Raises :class:`~healthy_homes.errors.ConsentRequiredError` unless the referral's
    consent is in force at this moment (see :func:`envelopes_for`).
    """
    found = envelopes_for(db, [(referral_id, service)])[referral_id]
    if isinstance(found, HealthyHomesError):
        raise found
    return found


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


def _transport(
    housing: FhirClient | Transport | None,
    service: HousingServiceConfig,
    clock: Clock,
    http: httpx.AsyncBaseTransport | None,
) -> tuple[Transport, bool]:
    """The transport to send over, and whether this call opened it (and must close it)."""
    if isinstance(housing, FhirClient):
        if service.transport == "fhir":
            return FhirRestTransport(housing), False  # the caller's pooled client
        housing = None  # a FHIR client cannot carry BaRS, HL7 v2 or email
    if housing is not None:
        return housing, False
    return transport_for(service, clock=clock, http=http), True


async def forward_referral(
    db: Database,
    housing: FhirClient | Transport | None,
    referral_id: str,
    service: HousingServiceConfig,
    clock: Clock,
    *,
    http: httpx.AsyncBaseTransport | None = None,
) -> Referral:
    """Send one referral now; refuse unless its consent is active at this very moment.

    It goes over the service's configured transport (``transport_for``), as the
    delivery worker would send it. ``housing`` may be that transport, or a pooled
    client reused for a FHIR service; else a transport is opened for this send
    (``http`` routes its HTTP, as in ``transport_for``) and closed after.
    """
    envelope = envelope_for(db, referral_id, service)
    if envelope is None:
        return _already_settled(db, referral_id)
    transport, opened = _transport(housing, service, clock, http)
    try:
        receipt = await transport.deliver(envelope)
    except DeliveryError as exc:
        _record_failure(db, referral_id, str(exc))
        raise
    finally:
        if opened:
            await transport.aclose()
    with db.session() as session:
        row = session.get(Referral, referral_id)
        assert row is not None
        row.status, row.sent_at, row.last_error = ReferralStatus.SENT, clock.now(), None
        row.remote_task_url = receipt.remote_ref
        set_remote_status(session, row, receipt.status, clock.now())
        session.add(row)
        _close_outbox_entry(session, row.id, clock)
        audit_events.disclosure(session, row.id, row, service.id, "direct", clock)
    log.info("referral delivered", extra={"referral": referral_id, "service": service.id})
    return row


def _already_settled(db: Database, referral_id: str) -> Referral:
    with db.session() as session:
        referral = session.get(Referral, referral_id)
    if referral is None:
        raise ReferralError(f"referral {referral_id} not found")
    if referral.status == ReferralStatus.CANCELLED:
        raise ReferralError(
            "referral was cancelled", referral=referral_id, practice=referral.practice_ods
        )
    return referral


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


async def refresh_status(
    db: Database, housing_client: FhirClient, referral_id: str, clock: Clock
) -> str | None:
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
        set_remote_status(session, row, status, clock.now())
    return status
