"""Raising flags: decide, record, and write the FHIR Flag idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import col, func, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import FlagRulesConfig
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.fhir_flag import build_flag, flag_search_key
from healthy_homes.flags.rules import decide
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import active_members
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    FlagRecord,
    FlagStatus,
    Referral,
    ReferralStatus,
)

log = logging.getLogger(__name__)


@dataclass
class FlagReport:
    """What a flag run did at one practice."""

    raised: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    capped: bool = False


def _busy_patients(db: Database, practice: str) -> set[str]:
    """Patients with a flag not yet retired, or a live referral: never flagged again meanwhile.

    A flag with an outcome (declined, dismissed) keeps suppressing until it is retired,
    so a patient who said no is not asked again at the next sync.
    """
    with db.session() as session:
        flagged = session.exec(
            select(FlagRecord.patient_id).where(
                FlagRecord.practice_ods == practice,
                FlagRecord.status != FlagStatus.RETIRED.value,
            )
        ).all()
        referred = session.exec(
            select(Referral.patient_id).where(
                Referral.practice_ods == practice,
                Referral.status != ReferralStatus.CANCELLED.value,
            )
        ).all()
    return set(flagged) | set(referred)


def _raised_today(db: Database, practice: str, clock: Clock) -> int:
    start = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    with db.session() as session:
        return session.exec(
            select(func.count()).where(
                FlagRecord.practice_ods == practice, col(FlagRecord.created_at) >= start
            )
        ).one()


async def raise_flags(
    db: Database,
    client: FhirClient,
    practice: str,
    registers: list[RegisterDefinition],
    rules: FlagRulesConfig,
    clock: Clock,
) -> FlagReport:
    """Flag every eligible register patient, up to the daily cap."""
    report = FlagReport()
    by_name = {r.name: r for r in registers}
    busy = _busy_patients(db, practice)
    budget = rules.max_new_flags_per_day - _raised_today(db, practice, clock)
    for patient_id, memberships in active_members(db, practice).items():
        if patient_id in busy:
            report.skipped["already flagged or referred"] = (
                report.skipped.get("already flagged or referred", 0) + 1
            )
            continue
        if budget <= 0:
            report.capped = True
            break
        patient = await client.read("Patient", patient_id)
        decision = decide(
            memberships, patient, by_name, already_open=False, today=clock.now().date()
        )
        if not decision.flag:
            reason = decision.why_not or "not eligible"
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
            continue
        await _raise_one(
            db,
            client,
            practice,
            patient_id,
            decision.registers,
            decision.reasons,
            rules.rule_set_version,
            clock,
        )
        report.raised.append(patient_id)
        budget -= 1
    return report


async def _raise_one(
    db: Database,
    client: FhirClient,
    practice: str,
    patient_id: str,
    registers: list[str],
    reasons: list[str],
    rule_set_version: str,
    clock: Clock,
) -> FlagRecord:
    """Record the flag first, then write the FHIR Flag keyed by its id (safe to retry)."""
    now = clock.now()
    record = FlagRecord(
        practice_ods=practice,
        patient_id=patient_id,
        registers=registers,
        reasons=reasons,
        rule_set_version=rule_set_version,
        status=FlagStatus.RAISED,
        created_at=now,
        updated_at=now,
    )
    with db.session() as session:
        session.add(record)
    await write_fhir_flag(db, client, record)
    return record


async def write_fhir_flag(db: Database, client: FhirClient, record: FlagRecord) -> None:
    """Create (or find) the FHIR Flag for a flag record and remember its server id."""
    resource = build_flag(
        flag_id=record.id,
        patient_id=record.patient_id,
        practice_ods=record.practice_ods,
        start=record.created_at,
    )
    created = await client.create(resource, if_none_exist=flag_search_key(record.id))
    with db.session() as session:
        row = session.get(FlagRecord, record.id)
        if row is not None:
            row.fhir_flag_id = str(created.get("id"))
            session.add(row)
    record.fhir_flag_id = str(created.get("id"))


def set_flag_status(db: Database, flag_id: str, status: FlagStatus, clock: Clock) -> FlagRecord:
    """Move a flag to a new lifecycle status."""
    with db.session() as session:
        row = session.get(FlagRecord, flag_id)
        if row is None:
            raise KeyError(flag_id)
        row.status, row.updated_at = status, clock.now()
        session.add(row)
        return row


async def close_fhir_flag(client: FhirClient, record: FlagRecord, clock: Clock) -> None:
    """Inactivate the FHIR Flag once the clinician has acted on it (version-aware)."""
    if record.fhir_flag_id is None:
        return
    current = await client.read("Flag", record.fhir_flag_id)
    if current.get("status") == "inactive":
        return
    version = (current.get("meta") or {}).get("versionId")
    updated = {
        **current,
        "status": "inactive",
        "period": {**(current.get("period") or {}), "end": clock.now().isoformat()},
    }
    await client.update(updated, if_match=f'W/"{version}"' if version else None)
