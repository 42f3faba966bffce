"""Alerts for operators: one row per problem episode, and one structured log line.

The row's ``key`` is unique, so raising the same episode twice (two workers, a
retried transaction) leaves one alert. Messages name referrals and services by id,
never a patient.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, select

from healthy_homes.store.models import Alert

log = logging.getLogger("healthy_homes.alerts")


def raise_alert(
    session: Session,
    *,
    kind: str,
    subject: str,
    episode: int,
    practice: str | None,
    message: str,
    now: datetime,
) -> Alert | None:
    """Record the alert in ``session`` unless this episode already has one."""
    key = f"{kind}:{subject}:{episode}"
    if session.exec(select(Alert).where(Alert.key == key)).first() is not None:
        return None
    alert = Alert(
        key=key, kind=kind, subject=subject, practice_ods=practice, message=message, created_at=now
    )
    session.add(alert)
    log.error(
        "alert %s: %s",
        kind,
        message,
        extra={"alert": kind, "subject": subject, "practice": practice, "episode": episode},
    )
    return alert
