"""Creating a referral once the patient has consented."""

from __future__ import annotations

from healthy_homes.clock import Clock
from healthy_homes.errors import ConsentRequiredError, ReferralError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.referrals.dataset import from_patient
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentRecord,
    OutboxEntry,
    OutboxState,
    Referral,
    ReferralStatus,
)


async def create_referral(
    db: Database,
    practice_client: FhirClient,
    *,
    consent_id: str,
    housing_service_id: str,
    clock: Clock,
) -> Referral:
    """Snapshot the minimum dataset for a consented patient and record a pending referral.

    The referral and its outbox entry are written in one transaction: there is never a
    referral the delivery worker does not know about, nor an entry without its referral.
    """
    with db.session() as session:
        consent = session.get(ConsentRecord, consent_id)
        if consent is None or not consent.is_active_permit:
            raise ConsentRequiredError(
                "a referral can only be created from consent that was given and not withdrawn"
            )
    patient = await practice_client.read("Patient", consent.patient_id)
    try:
        dataset = from_patient(
            patient, practice_ods=consent.practice_ods, referrer=consent.recorded_by
        )
    except ValueError as exc:
        raise ReferralError(str(exc), practice=consent.practice_ods) from exc
    referral = Referral(
        practice_ods=consent.practice_ods,
        patient_id=consent.patient_id,
        consent_id=consent.id,
        flag_id=consent.flag_id,
        housing_service_id=housing_service_id,
        dataset=dataset.model_dump(mode="json"),
        status=ReferralStatus.PENDING,
        created_at=clock.now(),
    )
    now = clock.now()
    with db.session() as session:
        session.add(referral)
        session.flush()  # no ORM relationships: the referral row first, for the foreign key
        session.add(
            OutboxEntry(
                referral_id=referral.id,
                housing_service_id=housing_service_id,
                state=OutboxState.PENDING,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    return referral
