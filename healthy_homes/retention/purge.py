"""What the retention policy removes, and removing it.

- A referral is purged ``referral_days`` after it was sent, cancelled or given up
  (``sent``, ``cancelled`` or ``failed``; a pending one never), with its outbox entry
  and anything else that refers to it.
- A patient with no referral and no open flag is purged once nothing about them has
  changed for ``never_referred_days``: register membership, register conditions,
  patient status, watched appointments, flags and their events, consent records.
- The housing inbox purges a referral ``housing_referral_days`` after the work ended.
- The audit log is kept: it names patients only by a keyed pseudonym. The purge adds
  one entry with the counts.

A dry run does all of it in a transaction that is rolled back, so its counts are
exactly what a real run would remove, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, tuple_
from sqlmodel import Session, col

from healthy_homes.audit import record_audit
from healthy_homes.clock import Clock
from healthy_homes.config.retention import RetentionConfig
from healthy_homes.retention.rows import CHUNK, Counts, remove
from healthy_homes.retention.space import reclaim
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    OPEN_FLAG_STATUSES,
    ConsentRecord,
    FlagRecord,
    HousingReferral,
    PatientStatus,
    Referral,
    ReferralStatus,
    RegisterCondition,
    RegisterMembership,
    WatchedAppointment,
)

Patient = tuple[str, str]
#: Tables keyed by (practice_ods, patient_id), with the column that says when it changed.
PATIENT_TABLES: tuple[tuple[Any, Any], ...] = (
    (ConsentRecord, func.coalesce(ConsentRecord.withdrawn_at, ConsentRecord.recorded_at)),
    (FlagRecord, FlagRecord.updated_at),
    (RegisterMembership, RegisterMembership.updated_at),
    (RegisterCondition, RegisterCondition.updated_at),
    (PatientStatus, PatientStatus.updated_at),
    (WatchedAppointment, WatchedAppointment.updated_at),
)
CLOSED_REFERRAL = (ReferralStatus.SENT, ReferralStatus.CANCELLED, ReferralStatus.FAILED)


@dataclass
class PurgeReport:
    """Rows removed per table (or that would be, in a dry run) and space given back."""

    dry_run: bool
    counts: Counts = field(default_factory=Counts)
    bytes_before: int | None = None
    bytes_after: int | None = None

    @property
    def total(self) -> int:
        """Rows removed across all tables."""
        return sum(self.counts.values())


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _old_referrals(session: Session, cutoff: datetime) -> list[str]:
    closed = func.coalesce(Referral.cancelled_at, Referral.sent_at, Referral.created_at)
    query = select(col(Referral.id)).where(
        col(Referral.status).in_(CLOSED_REFERRAL), closed < cutoff
    )
    return list(session.execute(query).scalars())


def _never_referred(session: Session, cutoff: datetime) -> list[Patient]:
    """Patients with no referral and no open flag, unchanged since before ``cutoff``."""
    last: dict[Patient, datetime] = {}
    for model, changed in PATIENT_TABLES:
        query = select(model.practice_ods, model.patient_id, func.max(changed)).group_by(
            model.practice_ods, model.patient_id
        )
        for ods, patient, when in session.execute(query):
            key = (ods, patient)
            if when is not None and (key not in last or when > last[key]):
                last[key] = when
    keep: set[Patient] = {
        (ods, patient)
        for ods, patient in session.execute(
            select(col(Referral.practice_ods), col(Referral.patient_id))
        )
    }
    open_flags = select(col(FlagRecord.practice_ods), col(FlagRecord.patient_id)).where(
        col(FlagRecord.status).in_(OPEN_FLAG_STATUSES)
    )
    keep.update((ods, patient) for ods, patient in session.execute(open_flags))
    return sorted(k for k, when in last.items() if when < cutoff and k not in keep)


def _remove_patients(session: Session, patients: list[Patient], counts: Counts) -> None:
    for model, _changed in PATIENT_TABLES:
        table = _table(model)
        for start in range(0, len(patients), CHUNK):
            chunk = patients[start : start + CHUNK]
            who = tuple_(table.c.practice_ods, table.c.patient_id).in_(chunk)
            ids = list(session.execute(select(table.c.id).where(who)).scalars())
            remove(session, table, table.c.id, ids, counts)


def _old_housing_referrals(session: Session, cutoff: datetime) -> list[str]:
    ended = col(HousingReferral.ended_at)
    return list(
        session.execute(
            select(col(HousingReferral.id)).where(ended.is_not(None), ended < cutoff)
        ).scalars()
    )


def plan_and_remove(
    session: Session, config: RetentionConfig, clock: Clock, counts: Counts
) -> None:
    """Remove what the policy says has gone past its time (in the caller's transaction)."""
    now = clock.now()
    referrals = _old_referrals(session, now - timedelta(days=config.referral_days))
    remove(session, _table(Referral), _table(Referral).c.id, referrals, counts)
    # Referrals first: a patient whose last referral just went is then never-referred.
    patients = _never_referred(session, now - timedelta(days=config.never_referred_days))
    _remove_patients(session, patients, counts)
    housing = _old_housing_referrals(session, now - timedelta(days=config.housing_referral_days))
    remove(session, _table(HousingReferral), _table(HousingReferral).c.id, housing, counts)


def purge(
    db: Database, config: RetentionConfig, clock: Clock, *, dry_run: bool = False
) -> PurgeReport:
    """Apply the retention policy; a dry run reports the same counts and changes nothing."""
    report = PurgeReport(dry_run=dry_run)
    with db.session() as session:
        plan_and_remove(session, config, clock, report.counts)
        if dry_run:
            session.rollback()
            return report
        if report.total:
            record_audit(
                session,
                actor="system",
                role="system",
                action="retention.purge",
                subject_kind="retention",
                subject_id=clock.now().date().isoformat(),
                practice_ods=None,
                detail=dict(sorted(report.counts.items())),
                clock=clock,
            )
    if report.total and config.reclaim_space:
        report.bytes_before, report.bytes_after = reclaim(db, _touched(report.counts))
    return report


def _touched(counts: Counts) -> Iterable[str]:
    return sorted(name for name, n in counts.items() if n)
