"""Withdrawing consent: nothing more leaves, and what left is recalled.

The consent is marked withdrawn first, so the gate in the forwarding path refuses
from that instant. Then each referral resting on it is cancelled: an unsent one here
only; one that was sent (or may have been: an attempt whose answer was lost) is
followed by a cancellation asking the housing service to stop and delete, sent over
the service's own transport (:meth:`Transport.cancel
<healthy_homes.referrals.transports.base.Transport.cancel>`): the FHIR Task cancelled
and ServiceRequest revoked, a BaRS ``delete`` message, an HL7 v2 REF^I14, or an email
saying withdraw and delete. Every cancel is safe to repeat. A recall that cannot be
delivered now stays due; the connector's schedule calls :func:`retry_recalls`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy import and_, or_
from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.consent.service import Recipient, withdraw, write_fhir_consent
from healthy_homes.errors import DeliveryError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.referrals.loop import stored_envelope
from healthy_homes.referrals.transports.base import Transport, transport_for
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentRecord, Referral, ReferralStatus

log = logging.getLogger(__name__)

WITHDRAWN = "consent withdrawn"


@dataclass
class WithdrawalResult:
    """What withdrawing one consent did."""

    consent: ConsentRecord
    cancelled: list[str] = field(default_factory=list)  # referrals never sent
    recalled: list[str] = field(default_factory=list)  # housing asked to stop and delete
    pending: list[str] = field(default_factory=list)  # recall not delivered yet: retry later


class Recaller:
    """Each housing service's transport, used to ask it to stop (built on first use)."""

    def __init__(
        self,
        services: Sequence[HousingServiceConfig],
        *,
        clock: Clock,
        http: httpx.AsyncBaseTransport | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        self.services = {s.id: s for s in services}
        self.clock = clock
        self.http = http
        self._given = dict(transports or {})
        self._built: dict[str, Transport] = {}

    def transport(self, service_id: str) -> tuple[HousingServiceConfig, Transport] | None:
        """The service and its transport; None for a service no longer configured."""
        service = self.services.get(service_id)
        if service is None:
            return None
        found = self._given.get(service_id) or self._built.get(service_id)
        if found is None:
            found = transport_for(service, clock=self.clock, http=self.http)
            self._built[service_id] = found
        return service, found

    async def aclose(self) -> None:
        """Close the transports built here (given ones belong to their owner)."""
        for transport in self._built.values():
            await transport.aclose()
        self._built.clear()


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
    db: Database, referrals: list[Referral], recaller: Recaller, clock: Clock
) -> tuple[list[str], list[str]]:
    """Recall each referral over its service's transport; returns (recalled, still pending)."""
    recalled: list[str] = []
    pending: list[str] = []
    for referral in referrals:
        found = recaller.transport(referral.housing_service_id)
        if found is None:
            log.warning("recall has no configured service", extra={"referral": referral.id})
            pending.append(referral.id)
            continue
        service, transport = found
        try:
            await transport.cancel(stored_envelope(db, referral, service), WITHDRAWN)
        except DeliveryError as exc:
            log.warning("recall not delivered: %s", exc.message, extra={"referral": referral.id})
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
    recaller: Recaller,
    practice_client: FhirClient | None = None,
    recipient: Recipient | None = None,
    reason: str | None = None,
) -> WithdrawalResult:
    """Withdraw a consent, cancel or recall its referrals, and inactivate the record's Consent.

    A recall or a practice record that cannot be reached now is left pending; the
    scheduled :func:`retry_recalls` delivers it later. Nothing is ever sent again for
    this consent.
    """
    consent = withdraw(db, consent_id, clock, by=recorded_by, reason=reason)
    unsent, to_recall = _cancel_locally(db, [consent_id], clock, reason or WITHDRAWN)
    recalled, pending = await _recall_each(db, to_recall, recaller, clock)
    result = WithdrawalResult(consent, unsent, recalled, pending)
    if practice_client is not None and recipient is not None:
        result.consent = await write_fhir_consent(db, practice_client, consent, recipient)
    return result


async def retry_recalls(
    db: Database, recaller: Recaller, clock: Clock, practice: str | None = None
) -> list[str]:
    """Recall every referral of a withdrawn consent the housing service may still hold.

    Every practice's, or one ``practice``'s. Also catches a referral whose sending
    was already under way when consent was withdrawn and which was recorded as sent
    afterwards. Returns those recalled.
    """
    # Only consents with something left to do: a referral not cancelled here yet, or one
    # that may have left and has not been recalled since (as _needs_recall decides).
    left_to_do = or_(
        col(Referral.status) != ReferralStatus.CANCELLED.value,
        and_(
            or_(col(Referral.sent_at).is_not(None), col(Referral.attempts) > 0),
            or_(
                col(Referral.remote_cancelled_at).is_(None),
                col(Referral.sent_at) > col(Referral.remote_cancelled_at),
            ),
        ),
    )
    query = (
        select(ConsentRecord.id)
        .join(Referral, col(Referral.consent_id) == col(ConsentRecord.id))
        .where(col(ConsentRecord.withdrawn_at).is_not(None), left_to_do)
        .distinct()
    )
    if practice is not None:
        query = query.where(ConsentRecord.practice_ods == practice)
    with db.session() as session:
        withdrawn = list(session.exec(query))
    if not withdrawn:
        return []
    _, to_recall = _cancel_locally(db, withdrawn, clock, WITHDRAWN)
    recalled, _ = await _recall_each(db, to_recall, recaller, clock)
    return recalled
