"""Flag lifecycle events: every move of a flag, with who, when, what and why.

Events are only ever added, so reports (how many prompts, how many discussions, how
many referrals per rule set) can be worked out afterwards.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from healthy_homes.store.models import FlagEvent, FlagRecord


class EventKind(StrEnum):
    """What happened to a flag."""

    RAISED = "raised"
    SHOWN = "shown"
    SNOOZED = "snoozed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_APPROPRIATE = "not-appropriate"
    DISMISSED = "dismissed"
    RETIRED = "retired"
    CONSENT_WITHDRAWN = "consent-withdrawn"


class Source(StrEnum):
    """Where an event came from."""

    CONNECTOR = "connector"
    CDS_HOOKS = "cds-hooks"
    WEB = "web"
    API = "api"


def add_event(
    session: Session,
    flag: FlagRecord,
    kind: EventKind,
    at: datetime,
    *,
    actor: str | None = None,
    reason: str | None = None,
    source: Source | str = Source.API,
    hook: str | None = None,
    event_id: str | None = None,
) -> FlagEvent:
    """Add one event to the session (committed with the caller's change)."""
    event = FlagEvent(
        flag_id=flag.id,
        practice_ods=flag.practice_ods,
        kind=kind.value,
        reason=reason[:500] if reason else None,
        actor=actor[:120] if actor else None,
        source=str(source),
        hook=hook,
        at=at,
    )
    if event_id is not None:
        event.id = event_id
    session.add(event)
    return event
