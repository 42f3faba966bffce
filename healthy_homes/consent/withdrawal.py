"""Withdrawing consent: nothing more leaves, and what left is recalled.

The consent is marked withdrawn first, so the gate in the forwarding path refuses
from that instant. Then each referral resting on it is cancelled: an unsent one here
only; one that was sent (or may have been: an attempt whose answer was lost) is
followed by a cancellation asking the housing service to stop and delete. For the
FHIR transport that is the remote Task moved to ``cancelled`` with statusReason
"consent withdrawn" and the ServiceRequest moved to ``revoked``, both found by our
identifier and updated with If-Match, so repeating it changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.consent.service import Recipient, withdraw, write_fhir_consent
from healthy_homes.errors import FhirError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.flags.fhir_sync import find_by_identifier, versioned_update
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentRecord, Referral, ReferralStatus

log = logging.getLogger(__name__)

WITHDRAWN = "consent withdrawn"
#: Task states a sender may still cancel (https://hl7.org/fhir/R4/task.html#statemachine).
CANCELLABLE_TASK = frozenset(
    {"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"}
)
REVOCABLE_REQUEST = frozenset({"draft", "active", "on-hold"})


@dataclass
class WithdrawalResult:
    """What withdrawing one consent did."""

    consent: ConsentRecord
    cancelled: list[str] = field(default_factory=list)  # referrals never sent
    recalled: list[str] = field(default_factory=list)  # housing asked to stop and delete
    pending: list[str] = field(default_factory=list)  # recall not delivered yet: retry later


def _cancelled_task(current: JSON) -> JSON | None:
    if current.get("status") not in CANCELLABLE_TASK:
        return None
    return {**current, "status": "cancelled", "statusReason": {"text": WITHDRAWN}}


def _revoked_request(current: JSON) -> JSON | None:
    if current.get("status") not in REVOCABLE_REQUEST:
        return None
    return {**current, "status": "revoked"}


async def recall(housing: FhirClient, referral_id: str) -> bool:
    """Ask the housing service to stop: cancel its Task, revoke the ServiceRequest.

    Returns whether it holds the referral at all. Safe to repeat.
    """
    found = False
    for resource_type, change in (("Task", _cancelled_task), ("ServiceRequest", _revoked_request)):
        current = await find_by_identifier(housing, resource_type, HH_REFERRAL_ID, referral_id)
        if current is not None:
            found = True
            await versioned_update(housing, resource_type, str(current["id"]), change)
    return found


def _needs_recall(referral: Referral) -> bool:
    """Sent, or maybe sent, and not recalled since it last went out."""
    if referral.sent_at is None and referral.attempts == 0:
        return False
    done = referral.remote_cancelled_at
    return done is None or (referral.sent_at is not None and referral.sent_at > done)


def _cancel_locally(
    db: Database, consents: list[str], clock: Clock, reason: str
) -> tuple[list[str], list[Referral]]:
    """Cancel these consents' referrals here: (never sent, to recall from the housing service)."""
    now = clock.now()
    unsent: list[str] = []
    may_hold: list[Referral] = []
    with db.session() as session:
        query = select(Referral).where(col(Referral.consent_id).in_(consents))
        for referral in session.exec(query):
            if referral.status != ReferralStatus.CANCELLED:
                referral.status, referral.cancelled_at = ReferralStatus.CANCELLED, now
                referral.cancel_reason = reason
                session.add(referral)
                if not _needs_recall(referral):
                    unsent.append(referral.id)
            if _needs_recall(referral):
                may_hold.append(referral)
    return unsent, may_hold


async def _recall_each(
    db: Database, referrals: list[Referral], housing: Mapping[str, FhirClient], clock: Clock
) -> tuple[list[str], list[str]]:
    """Recall each referral; returns (recalled, still pending)."""
    recalled: list[str] = []
    pending: list[str] = []
    for referral in referrals:
        client = housing.get(referral.housing_service_id)
        if client is None:
            pending.append(referral.id)
            continue
        try:
            await recall(client, referral.id)
        except FhirError as exc:
            log.warning("recall not delivered: %s", exc, extra={"referral": referral.id})
            pending.append(referral.id)
            continue
        with db.session() as session:
            row = session.get(Referral, referral.id)
            if row is not None:
                row.remote_cancelled_at = clock.now()
                session.add(row)
        recalled.append(referral.id)
    return recalled, pending


async def withdraw_consent(
    db: Database,
    consent_id: str,
    *,
    recorded_by: str,
    clock: Clock,
    housing: Mapping[str, FhirClient],
    practice_client: FhirClient | None = None,
    recipient: Recipient | None = None,
    reason: str | None = None,
) -> WithdrawalResult:
    """Withdraw a consent, cancel or recall its referrals, and inactivate the record's Consent.

    ``housing`` maps housing service ids to their clients. A recall or a practice
    record that cannot be reached now is left pending; call again (or
    :func:`retry_recalls`) later. Nothing is ever sent again for this consent.
    """
    consent = withdraw(db, consent_id, clock, by=recorded_by, reason=reason)
    unsent, to_recall = _cancel_locally(db, [consent_id], clock, reason or WITHDRAWN)
    recalled, pending = await _recall_each(db, to_recall, housing, clock)
    result = WithdrawalResult(consent, unsent, recalled, pending)
    if practice_client is not None and recipient is not None:
        result.consent = await write_fhir_consent(db, practice_client, consent, recipient)
    return result


async def retry_recalls(
    db: Database, practice: str, housing: Mapping[str, FhirClient], clock: Clock
) -> list[str]:
    """Recall every referral of a withdrawn consent the housing service may still hold.

    Also catches a referral whose sending was already under way when consent was
    withdrawn and which was recorded as sent afterwards. Returns those recalled.
    """
    with db.session() as session:
        withdrawn = list(
            session.exec(
                select(ConsentRecord.id).where(
                    ConsentRecord.practice_ods == practice,
                    col(ConsentRecord.withdrawn_at).is_not(None),
                )
            )
        )
    if not withdrawn:
        return []
    _, to_recall = _cancel_locally(db, withdrawn, clock, WITHDRAWN)
    recalled, _ = await _recall_each(db, to_recall, housing, clock)
    return recalled
