"""Reconciliation: flags of patients no longer on any register are retired.

Worked out from state, not from one run's leavers, so a Flag that could not be
closed on the practice server this time is tried again at the next run.
"""

from __future__ import annotations

import logging

from sqlmodel import col, select

from healthy_homes.connector.context import PracticeContext
from healthy_homes.errors import FhirError, FhirStatusError
from healthy_homes.flags.lifecycle import close_fhir_flag
from healthy_homes.registers.membership import on_any_register
from healthy_homes.store.models import OPEN_FLAG_STATUSES, FlagRecord, FlagStatus

log = logging.getLogger(__name__)


def orphaned_flags(ctx: PracticeContext) -> list[FlagRecord]:
    """Open flags of patients who are on no register of the practice any more."""
    with ctx.db.session() as session:
        flags = list(
            session.exec(
                select(FlagRecord).where(
                    FlagRecord.practice_ods == ctx.ods,
                    col(FlagRecord.status).in_([s.value for s in OPEN_FLAG_STATUSES]),
                )
            )
        )
        still_on = on_any_register(session, ctx.ods, {f.patient_id for f in flags})
    return [f for f in flags if f.patient_id not in still_on]


async def retire_orphaned_flags(ctx: PracticeContext) -> int:
    """Inactivate the FHIR Flag, then retire the flag here; returns how many were retired."""
    retired = 0
    for record in orphaned_flags(ctx):
        try:
            await close_fhir_flag(ctx.client, record, ctx.clock)
        except FhirStatusError as exc:
            if exc.status_code not in (404, 410):  # a Flag deleted at the practice is closed
                log.warning("could not close a FHIR Flag: %s", exc, extra={"practice": ctx.ods})
                continue
        except FhirError as exc:
            log.warning("could not close a FHIR Flag: %s", exc, extra={"practice": ctx.ods})
            continue
        with ctx.db.session() as session:
            row = session.get(FlagRecord, record.id)
            if row is not None and row.status in {s.value for s in OPEN_FLAG_STATUSES}:
                row.status, row.updated_at = FlagStatus.RETIRED, ctx.clock.now()
                session.add(row)
                retired += 1
    return retired
