"""What a clinician does with a flag during an appointment, for one practice.

The entry point for the web pages and for CDS Hooks feedback. Each action is one
call (the "two clicks": open the prompt, choose), safe to repeat after a failure, and
refuses flags of another practice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import FlagRulesConfig, HousingServiceConfig
from healthy_homes.consent.preview import ReferralPreview, preview_referral
from healthy_homes.consent.service import CONSENT_WORDING_VERSION, Recipient, record_decision
from healthy_homes.consent.withdrawal import WithdrawalResult, withdraw_consent
from healthy_homes.errors import DeliveryError, FlagError, ReferralError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.events import Source
from healthy_homes.flags.transitions import (
    conclude,
    flags_for_patient,
    get_flag,
    mark_shown,
)
from healthy_homes.referrals.dataset import ReferralForm, with_form
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.referrals.service import create_referral
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentDecision,
    ConsentRecord,
    FlagRecord,
    FlagStatus,
    Referral,
    ReferralStatus,
)

log = logging.getLogger(__name__)


@dataclass
class ReferralOutcome:
    """Consent recorded, referral made, and whether it has gone (else why not yet)."""

    consent: ConsentRecord
    referral: Referral
    sent: bool
    error: str | None = None


class ClinicianActions:
    """Record what happened to a flag: shown, consent (and refer), decline, snooze, withdraw."""

    def __init__(
        self,
        db: Database,
        *,
        practice_ods: str,
        practice_client: FhirClient,
        service: HousingServiceConfig,
        housing_client: FhirClient | None,
        rules: FlagRulesConfig,
        clock: Clock,
        wording_version: str = CONSENT_WORDING_VERSION,
    ) -> None:
        self.db = db
        self.practice_ods = practice_ods
        self.practice_client = practice_client
        self.service = service
        self.housing_client = housing_client
        self.rules = rules
        self.clock = clock
        self.wording_version = wording_version

    @property
    def recipient(self) -> Recipient:
        """The housing service as the consent names it."""
        return Recipient(self.service.name, self.service.ods_code)

    def flag(self, flag_id: str) -> FlagRecord:
        """One of this practice's flags (FlagError for another practice's)."""
        with self.db.session() as session:
            flag = get_flag(session, flag_id)
        if flag.practice_ods != self.practice_ods:
            raise FlagError(f"flag {flag_id} not found", practice=self.practice_ods)
        return flag

    def flags_for_patient(self, patient_id: str, *, open_only: bool = True) -> list[FlagRecord]:
        """A patient's flags here, newest first; each carries its reasons and priority."""
        return flags_for_patient(self.db, self.practice_ods, patient_id, open_only=open_only)

    def mark_shown(
        self,
        flag_id: str,
        *,
        by: str,
        source: Source | str = Source.WEB,
        event_id: str | None = None,
    ) -> FlagRecord:
        """The prompt is in front of a clinician now."""
        self.flag(flag_id)
        return mark_shown(
            self.db, flag_id, by=by, clock=self.clock, source=source, event_id=event_id
        )

    async def preview(
        self, flag_id: str, *, recorded_by: str, form: ReferralForm | None = None
    ) -> ReferralPreview:
        """Exactly what the housing service would receive, before anyone consents."""
        self.flag(flag_id)
        return await preview_referral(
            self.db,
            self.practice_client,
            flag_id=flag_id,
            service=self.service,
            recorded_by=recorded_by,
            clock=self.clock,
            form=form,
            wording_version=self.wording_version,
        )

    async def consent(
        self,
        flag_id: str,
        *,
        recorded_by: str,
        method: str = "verbal",
        form: ReferralForm | None = None,
        send: bool = True,
        source: Source | str = Source.WEB,
    ) -> ReferralOutcome:
        """Consent given: record it, make the referral (with the form) and send it."""
        self.flag(flag_id)
        consent = await record_decision(
            self.db,
            self.practice_client,
            flag_id=flag_id,
            decision=ConsentDecision.GIVEN,
            recorded_by=recorded_by,
            recipient=self.recipient,
            clock=self.clock,
            method=method,
            wording_version=self.wording_version,
            source=source,
        )
        referral = self._referral_for(consent.id) or await create_referral(
            self.db,
            self.practice_client,
            consent_id=consent.id,
            housing_service_id=self.service.id,
            clock=self.clock,
        )
        if form is not None:
            referral = self._attach_form(referral.id, form)
        if not send or referral.status == ReferralStatus.SENT:
            return ReferralOutcome(consent, referral, referral.status == ReferralStatus.SENT)
        return await self._send(consent, referral)

    async def decline(
        self, flag_id: str, *, recorded_by: str, reason: str, source: Source | str = Source.WEB
    ) -> ConsentRecord:
        """Declined, with the patient's reason; not asked again for the decline window."""
        self.flag(flag_id)
        return await record_decision(
            self.db,
            self.practice_client,
            flag_id=flag_id,
            decision=ConsentDecision.DECLINED,
            recorded_by=recorded_by,
            recipient=self.recipient,
            clock=self.clock,
            reason=reason,
            wording_version=self.wording_version,
            source=source,
        )

    async def discuss_next_time(
        self, flag_id: str, *, recorded_by: str, source: Source | str = Source.WEB
    ) -> FlagRecord:
        """Snooze: the prompt stays, hidden until the next appointment (``snooze_days``)."""
        return await self.conclude(
            flag_id, FlagStatus.SNOOZED, recorded_by=recorded_by, source=source
        )

    async def not_appropriate(
        self,
        flag_id: str,
        *,
        recorded_by: str,
        reason: str | None = None,
        source: Source | str = Source.WEB,
    ) -> FlagRecord:
        """Not appropriate for this patient (the clinician's judgement)."""
        return await self.conclude(
            flag_id,
            FlagStatus.NOT_APPROPRIATE,
            recorded_by=recorded_by,
            reason=reason,
            source=source,
        )

    async def dismiss(
        self,
        flag_id: str,
        *,
        recorded_by: str,
        reason: str | None = None,
        source: Source | str = Source.WEB,
    ) -> FlagRecord:
        """Dismissed without an offer; flagged again after the dismissal window."""
        return await self.conclude(
            flag_id, FlagStatus.DISMISSED, recorded_by=recorded_by, reason=reason, source=source
        )

    async def withdraw(
        self, consent_id: str, *, recorded_by: str, reason: str | None = None
    ) -> WithdrawalResult:
        """Consent withdrawn: unsent referrals cancelled, sent ones recalled, Consent inactive."""
        with self.db.session() as session:
            consent = session.get(ConsentRecord, consent_id)
        if consent is None or consent.practice_ods != self.practice_ods:
            raise ReferralError(f"consent {consent_id} not found", practice=self.practice_ods)
        housing = {self.service.id: self.housing_client} if self.housing_client else {}
        return await withdraw_consent(
            self.db,
            consent_id,
            recorded_by=recorded_by,
            reason=reason,
            clock=self.clock,
            housing=housing,
            practice_client=self.practice_client,
            recipient=self.recipient,
        )

    async def conclude(
        self,
        flag_id: str,
        outcome: FlagStatus,
        *,
        recorded_by: str,
        reason: str | None = None,
        source: Source | str = Source.WEB,
    ) -> FlagRecord:
        """Any outcome other than consent or decline: snoozed, not appropriate, dismissed."""
        self.flag(flag_id)
        return await conclude(
            self.db,
            self.practice_client,
            flag_id,
            outcome,
            by=recorded_by,
            clock=self.clock,
            reason=reason,
            source=source,
            snooze_for=timedelta(days=self.rules.snooze_days),
        )

    def _referral_for(self, consent_id: str) -> Referral | None:
        with self.db.session() as session:
            return session.exec(
                select(Referral)
                .where(
                    Referral.consent_id == consent_id,
                    Referral.status != ReferralStatus.CANCELLED,
                )
                .order_by(col(Referral.created_at))
            ).first()

    def _attach_form(self, referral_id: str, form: ReferralForm) -> Referral:
        with self.db.session() as session:
            row = session.get(Referral, referral_id)
            if row is None:
                raise ReferralError(f"referral {referral_id} not found")
            if row.status == ReferralStatus.SENT:
                raise ReferralError(
                    "the referral has already been sent; its form can no longer change",
                    practice=row.practice_ods,
                    referral=row.id,
                )
            row.dataset = with_form(row.dataset, form)
            session.add(row)
            return row

    async def _send(self, consent: ConsentRecord, referral: Referral) -> ReferralOutcome:
        if self.housing_client is None:
            return ReferralOutcome(consent, referral, False, "no housing client configured")
        try:
            sent = await forward_referral(
                self.db, self.housing_client, referral.id, self.service, self.clock
            )
        except DeliveryError as exc:
            log.warning("referral not sent yet: %s", exc, extra={"referral": referral.id})
            return ReferralOutcome(consent, referral, False, exc.message)
        return ReferralOutcome(consent, sent, True)

    async def send_pending(self) -> list[str]:
        """Try again every referral of this practice not yet sent (the gate still decides)."""
        with self.db.session() as session:
            waiting = list(
                session.exec(
                    select(Referral.id).where(
                        Referral.practice_ods == self.practice_ods,
                        col(Referral.status).in_(
                            [ReferralStatus.PENDING.value, ReferralStatus.FAILED.value]
                        ),
                    )
                )
            )
        sent = []
        for referral_id in waiting:
            if self.housing_client is None:
                break
            try:
                await forward_referral(
                    self.db, self.housing_client, referral_id, self.service, self.clock
                )
            except DeliveryError:
                continue
            sent.append(referral_id)
        return sent
