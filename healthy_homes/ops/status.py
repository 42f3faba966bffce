"""``healthy-homes status``: one screen on practices, outbox, alerts and today's flags."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import func
from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import Settings
from healthy_homes.ops.collector import ACTED_ON, WAITING
from healthy_homes.ops.runs import latest_runs
from healthy_homes.store.db import Database
from healthy_homes.store.models import Alert, FlagEvent, OutboxEntry, OutboxState
from healthy_homes.store.ops_models import PracticeRunRecord

SYNC_KINDS = ("auto", "full")


@dataclass
class PracticeLine:
    """One practice: its latest sync (incremental or full) and how it ended."""

    ods: str
    name: str
    last_sync: PracticeRunRecord | None = None


@dataclass
class Status:
    """Everything the summary shows."""

    at: datetime
    practices: list[PracticeLine] = field(default_factory=list)
    outbox: Counter[str] = field(default_factory=Counter)
    oldest_waiting: datetime | None = None
    alerts: Counter[str] = field(default_factory=Counter)
    flags_today: Counter[str] = field(default_factory=Counter)


def gather(settings: Settings, db: Database, clock: Clock) -> Status:
    """Read the status from the store (works while ``serve`` runs elsewhere)."""
    now = clock.now()
    zone = settings.sync.zone
    midnight = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)
    status = Status(at=now)
    syncs: dict[str, PracticeRunRecord] = {}
    for run in latest_runs(db):
        if run.kind in SYNC_KINDS:
            known = syncs.get(run.practice_ods)
            if known is None or run.finished_at > known.finished_at:
                syncs[run.practice_ods] = run
    for practice in settings.practices:
        status.practices.append(
            PracticeLine(practice.ods_code, practice.name, syncs.get(practice.ods_code))
        )
    with db.session() as session:
        status.outbox.update(
            dict(
                session.exec(
                    select(OutboxEntry.state, func.count()).group_by(OutboxEntry.state)
                ).all()
            )
        )
        status.oldest_waiting = session.exec(
            select(func.min(OutboxEntry.created_at)).where(col(OutboxEntry.state).in_(WAITING))
        ).one()
        open_alerts = select(Alert.kind, func.count()).where(col(Alert.acknowledged_at).is_(None))
        status.alerts.update(dict(session.exec(open_alerts.group_by(Alert.kind)).all()))
        today = select(FlagEvent.kind, func.count()).where(col(FlagEvent.at) >= midnight)
        status.flags_today.update(dict(session.exec(today.group_by(FlagEvent.kind)).all()))
    return status


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _practice_row(line: PracticeLine, now: datetime) -> str:
    run = line.last_sync
    if run is None:
        return f"  {line.ods:<10} {line.name[:28]:<28} never synced"
    when = _ago(now, run.finished_at)
    kind = "full" if run.kind == "full" else "incremental"
    outcome = "OK" if run.outcome == "ok" else f"FAILED: {(run.error or '')[:60]}"
    return f"  {line.ods:<10} {line.name[:28]:<28} {kind} {when}: {outcome}"


def render(status: Status) -> str:
    """The summary as text, one screen for a few dozen practices."""
    now = status.at
    failing = sum(1 for p in status.practices if p.last_sync and p.last_sync.outcome != "ok")
    lines = [
        f"Healthy Homes status at {now.isoformat(timespec='seconds')}",
        "",
        f"Practices: {len(status.practices)} ({failing} failing at their last sync)",
    ]
    lines += [_practice_row(line, now) for line in status.practices]
    waiting = sum(status.outbox.get(s, 0) for s in WAITING)
    oldest = f", oldest {_ago(now, status.oldest_waiting)}" if status.oldest_waiting else ""
    lines += [
        "",
        f"Outbox: {waiting} waiting{oldest}; "
        f"{status.outbox.get(OutboxState.DEAD.value, 0)} dead letter(s); "
        f"{status.outbox.get(OutboxState.DELIVERED.value, 0)} delivered; "
        f"{status.outbox.get(OutboxState.CANCELLED.value, 0)} cancelled",
    ]
    alerts = ", ".join(f"{kind} {n}" for kind, n in sorted(status.alerts.items()))
    lines.append(f"Open alerts: {sum(status.alerts.values())}" + (f" ({alerts})" if alerts else ""))
    flags = status.flags_today
    acted = sum(flags.get(kind, 0) for kind in ACTED_ON)
    lines.append(
        f"Flags today: {flags.get('raised', 0)} raised, {flags.get('shown', 0)} shown, "
        f"{acted} acted on"
    )
    return "\n".join(lines)


__all__ = ["Status", "gather", "render"]
