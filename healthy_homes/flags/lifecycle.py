"""Raising flags: decide, record, and write the FHIR Flag idempotently.

Restraint is the point: suppression windows after a decline or a dismissal, nothing
while a referral is open, a daily cap per practice, and no more than the housing
service says it has room for. Within the day's budget the highest priority goes first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, func, select

from healthy_homes.clock import Clock
from healthy_homes.config.flag_rules import FlagRulesConfig
from healthy_homes.errors import FhirStatusError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.capacity import CapacityProvider, HousingCapacity, resolve_capacity
from healthy_homes.flags.events import EventKind, Source, add_event
from healthy_homes.flags.fhir_sync import close_fhir_flag, write_fhir_flag
from healthy_homes.flags.history import load_histories
from healthy_homes.flags.rules import NOT_INCLUDED, History, blocked, decide, included, priority_of
from healthy_homes.flags.transitions import sync_pending_flags
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import active_members
from healthy_homes.reporting.facts import record_flag_registers
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord, FlagStatus, RegisterMembership

__all__ = [
    "FlagReport",
    "close_fhir_flag",
    "raise_flags",
    "set_flag_status",
    "write_fhir_flag",
]

log = logging.getLogger(__name__)
DAILY_CAP = "daily cap reached"
AT_CAPACITY = "housing service at capacity"


@dataclass
class FlagReport:
    """What a flag run did at one practice."""

    raised: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    capped: bool = False
    throttled: bool = False
    rule_set_version: str | None = None

    def skip(self, why: str, count: int = 1) -> None:
        """Count patients not flagged for one reason."""
        self.skipped[why] = self.skipped.get(why, 0) + count


def _raised_today(db: Database, practice: str, now: datetime) -> int:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with db.session() as session:
        return session.exec(
            select(func.count()).where(
                FlagRecord.practice_ods == practice, col(FlagRecord.created_at) >= start
            )
        ).one()


Candidate = tuple[int, str, list[RegisterMembership]]


def _candidates(
    db: Database,
    practice: str,
    rules: FlagRulesConfig,
    known: set[str],
    now: datetime,
    report: FlagReport,
) -> tuple[list[Candidate], dict[str, History]]:
    """Register patients the store does not already rule out, highest priority first."""
    with db.session() as session:
        histories = load_histories(session, practice)
    found: list[Candidate] = []
    for patient_id, memberships in active_members(db, practice).items():
        why = blocked(histories.get(patient_id, History()), rules, now)
        if why:
            report.skip(why)
            continue
        names = [n for n in included(memberships, rules) if n in known]
        if not names:
            report.skip(NOT_INCLUDED)
            continue
        found.append((priority_of(names, rules), patient_id, memberships))
    found.sort(key=lambda c: (-c[0], c[1]))
    return found, histories


async def raise_flags(
    db: Database,
    client: FhirClient,
    practice: str,
    registers: list[RegisterDefinition],
    rules: FlagRulesConfig,
    clock: Clock,
    *,
    capacity: HousingCapacity | CapacityProvider | None = None,
) -> FlagReport:
    """Flag eligible register patients, highest priority first, within the day's budget."""
    report = FlagReport(rule_set_version=rules.rule_set_version)
    await sync_pending_flags(db, client, practice, clock)
    now = clock.now()
    by_name = {r.name: r for r in registers}
    candidates, histories = _candidates(db, practice, rules, set(by_name), now, report)
    budget = max(0, rules.max_new_flags_per_day - _raised_today(db, practice, now))
    room = (await resolve_capacity(capacity, practice)).allow(budget)
    limit_reason = DAILY_CAP
    if rules.throttle_on_capacity and room < budget:
        budget, limit_reason = room, AT_CAPACITY
    for index, (_, patient_id, memberships) in enumerate(candidates):
        if budget <= 0:
            report.skip(limit_reason, len(candidates) - index)
            if limit_reason == AT_CAPACITY:
                report.throttled = True
            else:
                report.capped = True
            break
        try:
            patient = await client.read("Patient", patient_id)
        except FhirStatusError as exc:
            if exc.status_code not in (404, 410):
                raise
            report.skip("patient record gone")
            continue
        history = histories.get(patient_id, History())
        decision = decide(memberships, patient, by_name, rules=rules, history=history, now=now)
        if not decision.flag:
            report.skip(decision.why_not or "not eligible")
            continue
        record = FlagRecord(
            practice_ods=practice,
            patient_id=patient_id,
            registers=decision.registers,
            reasons=decision.reasons,
            rule_set_version=rules.rule_set_version,
            priority=decision.priority,
            status=FlagStatus.RAISED,
            created_at=now,
            updated_at=now,
        )
        with db.session() as session:
            session.add(record)
            session.flush()  # the event's foreign key needs the flag row first
            record_flag_registers(session, record)
            add_event(
                session,
                record,
                EventKind.RAISED,
                now,
                actor=f"rule set {rules.rule_set_version}",
                source=Source.CONNECTOR,
            )
        await write_fhir_flag(db, client, record)
        report.raised.append(patient_id)
        budget -= 1
    if report.raised:
        log.info("flags raised", extra={"practice": practice, "count": len(report.raised)})
    return report


def set_flag_status(db: Database, flag_id: str, status: FlagStatus, clock: Clock) -> FlagRecord:
    """Move a flag to a new lifecycle status (no event; prefer flags.transitions)."""
    with db.session() as session:
        row = session.get(FlagRecord, flag_id)
        if row is None:
            raise KeyError(flag_id)
        row.status, row.updated_at = status, clock.now()
        session.add(row)
        return row
