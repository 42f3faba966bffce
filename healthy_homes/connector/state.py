"""Per practice and stream sync state: watermarks from the server, and last outcomes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from healthy_homes.registers.statements import table_of, upsert_rows
from healthy_homes.store.db import Database
from healthy_homes.store.models import SyncState

PATIENTS = "patients"
APPOINTMENTS = "appointments"


def load_states(db: Database, practice: str) -> dict[str, SyncState]:
    """Every stream's state for a practice, by stream name."""
    with db.session() as session:
        rows = session.exec(select(SyncState).where(SyncState.practice_ods == practice))
        return {row.stream: row for row in rows}


def state_row(
    session: Session, practice: str, stream: str, source: str, now: datetime
) -> SyncState:
    """The state row of a stream, created on first use (not yet flushed)."""
    row = session.exec(
        select(SyncState).where(SyncState.practice_ods == practice, SyncState.stream == stream)
    ).first()
    if row is None:
        row = SyncState(practice_ods=practice, stream=stream, source=source, updated_at=now)
    return row


def record_success(
    session: Session,
    practice: str,
    stream: str,
    *,
    source: str,
    watermark: datetime | None,
    now: datetime,
    full: bool,
    fingerprint: str | None = None,
    resource_id: str | None = None,
) -> None:
    """Store a stream's new watermark after a read whose results are already stored.

    One upsert (each register read ends with one): loading the row to change it cost
    more than the statement.
    """
    values: dict[str, object] = {
        "practice_ods": practice,
        "stream": stream,
        "source": source,
        "watermark": watermark,
        "last_run_at": now,
        "updated_at": now,
        "last_error": None,
    }
    if fingerprint is not None:
        values["fingerprint"] = fingerprint
    if resource_id is not None:
        values["resource_id"] = resource_id
    if full:
        values["last_full_at"] = now
    names = tuple(values)
    upsert_rows(
        session,
        table_of(SyncState),
        names,
        [tuple(values.values())],
        ("practice_ods", "stream"),
        names[2:],
    )


def record_failure(
    db: Database, practice: str, stream: str, source: str, error: str, now: datetime
) -> None:
    """Remember why a stream's last run failed; the watermark stays where it was."""
    with db.session() as session:
        row = state_row(session, practice, stream, source, now)
        row.last_error, row.last_run_at, row.updated_at = error[:500], now, now
        session.add(row)


def forget_watermark(db: Database, practice: str, stream: str, source: str, now: datetime) -> None:
    """Drop a stream's watermark, so an interrupted full read is redone in full."""
    with db.session() as session:
        row = state_row(session, practice, stream, source, now)
        row.watermark, row.updated_at = None, now
        session.add(row)
