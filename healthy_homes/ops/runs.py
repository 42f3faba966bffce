"""The latest run of each practice job, kept in ``practice_run`` for status and readiness."""

from __future__ import annotations

import logging

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from healthy_homes.connector.reports import PracticeRun
from healthy_homes.store.db import Database
from healthy_homes.store.ops_models import PracticeRunRecord

log = logging.getLogger(__name__)


def record_run(db: Database, run: PracticeRun, worker: str) -> None:
    """Keep this run as its practice's latest of its kind (a failure to record is logged)."""
    if run.skipped or run.finished is None:
        return
    values = {
        "practice_ods": run.practice,
        "kind": run.kind,
        "outcome": "failed" if run.error else "ok",
        "error": run.error[:500] if run.error else None,
        "worker": worker[:80],
        "started_at": run.started,
        "finished_at": run.finished,
    }
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(PracticeRunRecord)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[col(PracticeRunRecord.practice_ods), col(PracticeRunRecord.kind)],
            set_={k: v for k, v in values.items() if k not in ("practice_ods", "kind")},
        )
    )
    try:
        with db.session() as session:
            session.execute(statement)
    except SQLAlchemyError as exc:  # the run itself is done; only its record is missing
        log.warning(
            "could not record the run (%s)", type(exc).__name__, extra={"practice": run.practice}
        )


def latest_runs(db: Database) -> list[PracticeRunRecord]:
    """Every practice's latest run of each kind."""
    with db.session() as session:
        query = select(PracticeRunRecord).order_by(
            col(PracticeRunRecord.practice_ods), col(PracticeRunRecord.kind)
        )
        return list(session.exec(query))
