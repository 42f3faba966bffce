"""Recording consent decisions locally and in the practice record."""

from __future__ import annotations

from dataclasses import dataclass

from healthy_homes.clock import Clock
from healthy_homes.consent.fhir_consent import build_consent, consent_search_key
from healthy_homes.errors import ConsentError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.lifecycle import close_fhir_flag
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, ConsentRecord, FlagRecord, FlagStatus

CONSENT_WORDING_VERSION = "2026-1"


@dataclass(frozen=True)
class Recipient:
    """Who the consent permits to receive the referral."""

    name: str
    ods_code: str | None = None


async def record_decision(
    db: Database,
    client: FhirClient,
    *,
    flag_id: str,
    decision: ConsentDecision,
    recorded_by: str,
    recipient: Recipient,
    clock: Clock,
    method: str = "verbal",
    reason: str | None = None,
    wording_version: str = CONSENT_WORDING_VERSION,
) -> ConsentRecord:
    """Record consent given or declined for a flag, and mirror it as a FHIR Consent."""
    if decision == ConsentDecision.DECLINED and not reason:
        reason = "not given"
    now = clock.now()
    with db.session() as session:
        flag = session.get(FlagRecord, flag_id)
        if flag is None:
            raise ConsentError(f"flag {flag_id} not found")
        record = ConsentRecord(
            practice_ods=flag.practice_ods,
            patient_id=flag.patient_id,
            flag_id=flag.id,
            decision=decision,
            method=method,
            recorded_by=recorded_by,
            wording_version=wording_version,
            reason=reason,
            recorded_at=now,
        )
        session.add(record)
        flag.status = (
            FlagStatus.ACCEPTED if decision == ConsentDecision.GIVEN else FlagStatus.DECLINED
        )
        flag.updated_at = now
        session.add(flag)
    await close_fhir_flag(client, flag, clock)
    resource = build_consent(
        record,
        patient_reference=f"Patient/{record.patient_id}",
        housing_ods=recipient.ods_code,
        housing_name=recipient.name,
    )
    created = await client.create(resource, if_none_exist=consent_search_key(record.id))
    with db.session() as session:
        row = session.get(ConsentRecord, record.id)
        assert row is not None
        row.fhir_consent_id = str(created.get("id"))
        session.add(row)
        return row


def withdraw(db: Database, consent_id: str, clock: Clock) -> ConsentRecord:
    """Mark a consent withdrawn; the gate then refuses every referral that relies on it."""
    with db.session() as session:
        row = session.get(ConsentRecord, consent_id)
        if row is None:
            raise ConsentError(f"consent {consent_id} not found")
        if row.withdrawn_at is None:
            row.withdrawn_at = clock.now()
            session.add(row)
        return row
