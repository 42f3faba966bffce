"""Recording consent decisions locally and in the practice record.

Every function here may be called again after a failure (a timeout, a restart): the
local decision is recorded once, and the FHIR Flag and Consent are found again by our
identifiers rather than written twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from healthy_homes.audit import events as audit_events
from healthy_homes.clock import Clock
from healthy_homes.consent.fhir_consent import build_consent, consent_search_key
from healthy_homes.consent.wording import CURRENT_VERSION, WORDINGS
from healthy_homes.errors import ConsentError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.flags.events import EventKind, Source, add_event
from healthy_homes.flags.fhir_sync import sync_fhir_flag, versioned_update
from healthy_homes.flags.transitions import FINAL, get_flag, record_outcome, retire
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, ConsentRecord, FlagRecord, FlagStatus

CONSENT_WORDING_VERSION = CURRENT_VERSION
METHODS = ("verbal", "written")


@dataclass(frozen=True)
class Recipient:
    """Who the consent permits to receive the referral."""

    name: str
    ods_code: str | None = None


def _existing(db: Database, flag_id: str, decision: ConsentDecision) -> ConsentRecord | None:
    """The flag's consent still in force, if any (a permit, or this same decision)."""
    with db.session() as session:
        rows = session.exec(
            select(ConsentRecord)
            .where(ConsentRecord.flag_id == flag_id, col(ConsentRecord.withdrawn_at).is_(None))
            .order_by(col(ConsentRecord.recorded_at).desc())
        ).all()
    permit = next((r for r in rows if r.decision == ConsentDecision.GIVEN), None)
    if permit is not None:
        if decision != ConsentDecision.GIVEN:
            raise ConsentError(
                "consent was given for this flag; withdraw it rather than record a decline",
                practice=permit.practice_ods,
            )
        return permit
    return next((r for r in rows if r.decision == decision), None)


def record_decision_locally(
    db: Database,
    *,
    flag_id: str,
    decision: ConsentDecision,
    recorded_by: str,
    clock: Clock,
    method: str = "verbal",
    reason: str | None = None,
    wording_version: str = CONSENT_WORDING_VERSION,
    source: Source | str = Source.API,
) -> ConsentRecord:
    """The decision and the flag's outcome in our store only (the FHIR side comes after)."""
    if method not in METHODS:
        raise ConsentError(f"consent method must be one of {', '.join(METHODS)}")
    if not recorded_by.strip():
        raise ConsentError("who recorded the decision is required")
    if wording_version not in WORDINGS:
        raise ConsentError(f"unknown consent wording version {wording_version!r}")
    if decision == ConsentDecision.DECLINED and not reason:
        reason = "not given"
    record = _existing(db, flag_id, decision)
    outcome = FlagStatus.ACCEPTED if decision == ConsentDecision.GIVEN else FlagStatus.DECLINED
    flag = record_outcome(
        db, flag_id, outcome, by=recorded_by, clock=clock, reason=reason, source=source
    )
    if record is None:
        record = ConsentRecord(
            practice_ods=flag.practice_ods,
            patient_id=flag.patient_id,
            flag_id=flag.id,
            decision=decision,
            method=method,
            recorded_by=recorded_by,
            wording_version=wording_version,
            reason=reason,
            recorded_at=clock.now(),
        )
        with db.session() as session:
            session.add(record)
            if decision == ConsentDecision.GIVEN:
                _supersede_declines(session, flag_id, record)
    return record


def _supersede_declines(session: Session, flag_id: str, permit: ConsentRecord) -> None:
    """A patient who changed their mind: earlier declines for the flag stop being in force."""
    declines = session.exec(
        select(ConsentRecord).where(
            ConsentRecord.flag_id == flag_id,
            ConsentRecord.decision == ConsentDecision.DECLINED,
            col(ConsentRecord.withdrawn_at).is_(None),
        )
    )
    for decline in declines:
        decline.withdrawn_at, decline.withdrawn_by = permit.recorded_at, permit.recorded_by
        decline.withdrawal_reason = "superseded: the patient consented"
        session.add(decline)


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
    source: Source | str = Source.API,
) -> ConsentRecord:
    """Record consent given or declined for a flag, and mirror it as a FHIR Consent.

    The flag gets the matching outcome, its FHIR Flag becomes inactive and it is
    retired. Called again for the same flag and decision, it returns the same record.
    """
    record = record_decision_locally(
        db,
        flag_id=flag_id,
        decision=decision,
        recorded_by=recorded_by,
        clock=clock,
        method=method,
        reason=reason,
        wording_version=wording_version,
        source=source,
    )
    await finish_flag(db, client, flag_id, clock)
    for superseded in _superseded_declines(db, flag_id):
        await write_fhir_consent(db, client, superseded, recipient)
    return await write_fhir_consent(db, client, record, recipient)


def _superseded_declines(db: Database, flag_id: str) -> list[ConsentRecord]:
    """Withdrawn declines whose practice-record Consent may still say 'active'."""
    with db.session() as session:
        return list(
            session.exec(
                select(ConsentRecord).where(
                    ConsentRecord.flag_id == flag_id,
                    ConsentRecord.decision == ConsentDecision.DECLINED,
                    col(ConsentRecord.withdrawn_at).is_not(None),
                )
            )
        )


async def finish_flag(db: Database, client: FhirClient, flag_id: str, clock: Clock) -> None:
    """Inactivate the flag's FHIR Flag and retire it, once it has an outcome."""
    with db.session() as session:
        flag = get_flag(session, flag_id)
    if flag.status in FINAL:
        await sync_fhir_flag(db, client, flag, clock)
        retire(db, flag_id, clock=clock, reason=f"outcome {flag.outcome}")
    elif flag.status == FlagStatus.RETIRED and flag.fhir_status != "inactive":
        await sync_fhir_flag(db, client, flag, clock)


async def write_fhir_consent(
    db: Database, client: FhirClient, record: ConsentRecord, recipient: Recipient
) -> ConsentRecord:
    """Create (or find) the practice-record Consent; make it inactive once withdrawn."""
    resource = build_consent(
        record,
        patient_reference=f"Patient/{record.patient_id}",
        housing_ods=recipient.ods_code,
        housing_name=recipient.name,
    )
    found = await client.create(resource, if_none_exist=consent_search_key(record.id))
    fhir_id = str(found.get("id"))
    if resource["status"] == "inactive" and found.get("status") != "inactive":
        await versioned_update(client, "Consent", fhir_id, _inactive)
    with db.session() as session:
        row = session.get(ConsentRecord, record.id)
        if row is None:
            raise ConsentError(f"consent {record.id} not found")
        row.fhir_consent_id = fhir_id
        session.add(row)
        return row


def _inactive(current: JSON) -> JSON | None:
    if current.get("status") in ("inactive", "entered-in-error"):
        return None
    return {**current, "status": "inactive"}


def withdraw(
    db: Database,
    consent_id: str,
    clock: Clock,
    *,
    by: str | None = None,
    reason: str | None = None,
) -> ConsentRecord:
    """Mark a consent withdrawn; the gate then refuses every referral that relies on it."""
    with db.session() as session:
        row = session.get(ConsentRecord, consent_id)
        if row is None:
            raise ConsentError(f"consent {consent_id} not found")
        if row.withdrawn_at is None:
            row.withdrawn_at = clock.now()
            row.withdrawn_by = by[:120] if by else None
            row.withdrawal_reason = reason[:500] if reason else None
            session.add(row)
            audit_events.consent_withdrawn(
                session, row.id, row.practice_ods, row.patient_id, by, clock
            )
            flag = session.get(FlagRecord, row.flag_id) if row.flag_id else None
            if flag is not None:
                add_event(
                    session,
                    flag,
                    EventKind.CONSENT_WITHDRAWN,
                    row.withdrawn_at,
                    actor=by,
                    reason=reason,
                )
        return row
