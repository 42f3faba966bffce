"""Feedback (https://cds-hooks.hl7.org/2.0/#feedback) into the flag lifecycle.

Accepting "Refer: patient consents" records consent (verbal, by the user the card was
shown to, current wording) and then makes and sends the referral; "Patient declines"
records a decline; overriding records the outcome its reason maps to (no reason: a
dismissal). The decision is stored before we answer; the practice record, the
referral and the sending follow in the background and are safe to repeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from healthy_homes.clock import Clock
from healthy_homes.config.models import Settings
from healthy_homes.consent.service import record_decision_locally
from healthy_homes.errors import HealthyHomesError
from healthy_homes.flags.cds_hooks.cards import (
    OVERRIDE_DISPLAY,
    OVERRIDE_OUTCOMES,
    OVERRIDE_SYSTEM,
    suggestion_uuid,
)
from healthy_homes.flags.cds_hooks.clients import PracticeActions
from healthy_homes.flags.cds_hooks.jwt_auth import Caller
from healthy_homes.flags.cds_hooks.models import Feedback
from healthy_homes.flags.events import EventKind, Source
from healthy_homes.flags.transitions import record_outcome
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, FlagEvent, FlagRecord, FlagStatus

log = logging.getLogger(__name__)
DECLINED_AT_CARD = "declined when offered"


@dataclass(frozen=True)
class FeedbackDecision:
    """What one feedback item means for one flag."""

    flag_id: str
    practice: str
    outcome: FlagStatus  # ACCEPTED means consent given
    by: str
    reason: str | None = None


def _override(item: Feedback) -> tuple[FlagStatus, str | None]:
    given = item.overrideReason
    coding = given.reason if given else None
    comment = given.userComment if given else None
    code = coding.code if coding and coding.system in (None, OVERRIDE_SYSTEM) else None
    if code in OVERRIDE_OUTCOMES:
        return OVERRIDE_OUTCOMES[code], OVERRIDE_DISPLAY[code] + (f": {comment}" if comment else "")
    return FlagStatus.DISMISSED, (coding.display if coding else None) or comment


def interpret(db: Database, item: Feedback, caller: Caller) -> FeedbackDecision | None:
    """The decision an item reports, or None for a card or suggestion we did not issue."""
    with db.session() as session:
        shown = session.get(FlagEvent, item.card)
        flag = session.get(FlagRecord, shown.flag_id) if shown else None
    if shown is None or shown.kind != EventKind.SHOWN or flag is None:
        return None
    if flag.practice_ods != caller.practice_ods:
        return None  # another practice's card: treat as unknown, say nothing more
    by = shown.actor or "unknown user"
    if item.outcome == "overridden":
        outcome, reason = _override(item)
        return FeedbackDecision(flag.id, flag.practice_ods, outcome, by, reason)
    taken = {s.id for s in item.acceptedSuggestions or []}
    if str(suggestion_uuid(item.card, "refer")) in taken:
        return FeedbackDecision(flag.id, flag.practice_ods, FlagStatus.ACCEPTED, by)
    if str(suggestion_uuid(item.card, "decline")) in taken:
        return FeedbackDecision(
            flag.id, flag.practice_ods, FlagStatus.DECLINED, by, DECLINED_AT_CARD
        )
    return None


def record_locally(
    db: Database, decision: FeedbackDecision, settings: Settings, clock: Clock
) -> None:
    """Store the decision now (consent and decline as consent records too)."""
    if decision.outcome in (FlagStatus.ACCEPTED, FlagStatus.DECLINED):
        record_decision_locally(
            db,
            flag_id=decision.flag_id,
            decision=ConsentDecision.GIVEN
            if decision.outcome == FlagStatus.ACCEPTED
            else ConsentDecision.DECLINED,
            recorded_by=decision.by,
            clock=clock,
            reason=decision.reason,
            source=Source.CDS_HOOKS,
        )
        return
    record_outcome(
        db,
        decision.flag_id,
        decision.outcome,
        by=decision.by,
        clock=clock,
        reason=decision.reason,
        source=Source.CDS_HOOKS,
        snooze_for=timedelta(days=settings.flags.snooze_days),
    )


async def complete(actions: PracticeActions, decision: FeedbackDecision, send: bool) -> None:
    """The FHIR side of a stored decision: Flag, Consent, referral; failures only logged."""
    clinician = actions.for_practice(decision.practice)
    if clinician is None:
        log.warning(
            "feedback for a practice without configuration", extra={"practice": decision.practice}
        )
        return
    try:
        if decision.outcome == FlagStatus.ACCEPTED:
            result = await clinician.consent(
                decision.flag_id, recorded_by=decision.by, send=send, source=Source.CDS_HOOKS
            )
            if result.error:
                log.warning("referral from a card not sent yet: %s", result.error)
        elif decision.outcome == FlagStatus.DECLINED:
            await clinician.decline(
                decision.flag_id,
                recorded_by=decision.by,
                reason=decision.reason or DECLINED_AT_CARD,
                source=Source.CDS_HOOKS,
            )
        else:
            await clinician.conclude(
                decision.flag_id,
                decision.outcome,
                recorded_by=decision.by,
                reason=decision.reason,
                source=Source.CDS_HOOKS,
            )
    except HealthyHomesError as exc:
        log.warning(
            "feedback recorded; practice record not updated yet: %s",
            exc,
            extra={"practice": decision.practice},
        )
