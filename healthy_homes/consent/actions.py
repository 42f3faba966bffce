"""What a clinician does with a flag during an appointment, for one practice.

The entry point for the web pages and for CDS Hooks feedback. Each action is one
call (the "two clicks": open the prompt, choose), safe to repeat after a failure, and
refuses flags of another practice.

Each patient is routed (``referrals/routing.py``) before consent is asked: the offer
names the one housing service their home's postcode and tenure lead to, a patient
outside every service's area is told so and no consent is recorded, and the referral
made after consent goes to the routed service.

A health reason (why the patient was flagged) is written here, from the flag's own
reasons, never taken from what a page sent: it goes in the referral form only when
the practice has ``share_health_reason`` on and the patient agreed
(``health_reason_consented``); a reason sent to a practice that has it off is refused.

"Consent and refer" sends at once over the routed service's own transport (FHIR,
BaRS, HL7 v2 or email, as ``forward_referral`` picks it), as the delivery worker
would; the outbox entry written with the referral still covers a failed send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import FlagRulesConfig, HousingServiceConfig
from healthy_homes.consent.preview import ReferralPreview, preview_referral
from healthy_homes.consent.referrer import account_for_ehr_user, claim
from healthy_homes.consent.service import CONSENT_WORDING_VERSION, Recipient, record_decision
from healthy_homes.consent.withdrawal import Recaller, WithdrawalResult, withdraw_consent
from healthy_homes.errors import DeliveryError, FlagError, ReferralError, RoutingError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.flags.events import Source
from healthy_homes.flags.transitions import (
    conclude,
    flags_for_patient,
    get_flag,
    mark_shown,
)
from healthy_homes.referrals.dataset import (
    ReferralForm,
    allow_health_reason,
    from_patient,
    with_form,
)
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.referrals.routing import Routing, decide_dataset
from healthy_homes.referrals.service import create_referral
from healthy_homes.referrals.transports.base import Transport
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
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
    service: HousingServiceConfig | None = None


class ClinicianActions:
    """Record what happened to a flag: shown, consent (and refer), decline, snooze, withdraw.

    ``services`` are the housing services this practice may refer to (routing picks
    one per patient; default: ``service`` alone). ``housing_clients`` are pooled FHIR
    clients by service id; ``housing_client`` is ``service``'s. Other services are sent
    to over a transport opened for the send (``http`` routes its HTTP, as in
    ``transport_for``). ``share_health_reason`` is the practice's setting.
    """

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
        services: Sequence[HousingServiceConfig] | None = None,
        housing_clients: Mapping[str, FhirClient] | None = None,
        share_health_reason: bool = False,
        http: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.practice_ods = practice_ods
        self.practice_client = practice_client
        self.service = service
        self.services = list(services) if services else [service]
        self.housing_client = housing_client
        self.housing_clients = dict(housing_clients or {})
        self.rules = rules
        self.clock = clock
        self.wording_version = wording_version
        self.share_health_reason = share_health_reason
        self.http = http

    @property
    def recipient(self) -> Recipient:
        """The default housing service as the consent names it."""
        return recipient_of(self.service)

    def service_by_id(self, service_id: str) -> HousingServiceConfig | None:
        """One of this practice's housing services."""
        return next((s for s in self.services if s.id == service_id), None)

    def client_for(self, service: HousingServiceConfig) -> FhirClient | None:
        """The FHIR client that sends to ``service`` at once, if there is one."""
        if service.transport != "fhir":
            return None
        if service.id == self.service.id and self.housing_client is not None:
            return self.housing_client
        return self.housing_clients.get(service.id)

    def health_reason(self, flag_id: str) -> str | None:
        """Why the patient was flagged, for housing (None: this practice never shares it)."""
        if not self.share_health_reason:
            return None
        return health_reason_of(self.flag(flag_id))

    def _checked_form(self, flag_id: str, form: ReferralForm | None) -> ReferralForm | None:
        """The form with the health reason as the flag gives it, or refused or left out."""
        if form is None:
            return None
        try:
            allow_health_reason(form, practice_allows=self.share_health_reason)
        except ValueError as exc:
            raise ReferralError(str(exc), practice=self.practice_ods) from None
        agreed = self.share_health_reason and form.health_reason_consented
        # The page only says whether the patient agreed; the words come from the flag.
        reason = self.health_reason(flag_id) if agreed else None
        return form.model_copy(
            update={"health_reason": reason, "health_reason_consented": reason is not None}
        )

    async def route(
        self, flag_id: str, *, form: ReferralForm | None = None, recorded_by: str = ""
    ) -> Routing:
        """Which housing service this flag's patient would be referred to, or why none."""
        routing, _ = await self._route(flag_id, form=form, recorded_by=recorded_by)
        return routing

    async def _route(
        self, flag_id: str, *, form: ReferralForm | None, recorded_by: str
    ) -> tuple[Routing, JSON]:
        flag = self.flag(flag_id)
        patient = await self.practice_client.read("Patient", flag.patient_id)
        try:
            # Built exactly as the referral's dataset is: the same postcode decides.
            dataset = from_patient(
                patient, practice_ods=self.practice_ods, referrer=recorded_by, form=form
            )
        except ValueError as exc:
            raise ReferralError(str(exc), practice=self.practice_ods) from exc
        return decide_dataset(self.services, dataset), patient

    async def _routed(
        self, flag_id: str, *, form: ReferralForm | None, recorded_by: str
    ) -> tuple[HousingServiceConfig, JSON]:
        routing, patient = await self._route(flag_id, form=form, recorded_by=recorded_by)
        if routing.service is None:
            raise RoutingError(routing.message, practice=self.practice_ods)
        return routing.service, patient

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
        """Exactly what the routed housing service would receive, before anyone consents.

        RoutingError (with the clinician's explanation) when no service takes the patient.
        """
        form = self._checked_form(flag_id, form)
        service, patient = await self._routed(flag_id, form=form, recorded_by=recorded_by)
        return await preview_referral(
            self.db,
            self.practice_client,
            flag_id=flag_id,
            service=service,
            recorded_by=recorded_by,
            clock=self.clock,
            form=form,
            wording_version=self.wording_version,
            patient=patient,
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
        referrer: str | None = None,
    ) -> ReferralOutcome:
        """Consent given: record it, make the referral (with the form) and send it.

        The patient is routed first: with no housing service for them, RoutingError is
        raised and nothing is recorded. The referral goes to the routed service.
        ``referrer`` is the signed-in user's account id, which "Referrals you made"
        lists by; from CDS Hooks, ``recorded_by`` is the EHR's user, matched to an
        account by ``consent.referrer`` (no single match: nobody's).
        """
        form = self._checked_form(flag_id, form)
        service, _ = await self._routed(flag_id, form=form, recorded_by=recorded_by)
        consent = await record_decision(
            self.db,
            self.practice_client,
            flag_id=flag_id,
            decision=ConsentDecision.GIVEN,
            recorded_by=recorded_by,
            recipient=recipient_of(service),
            clock=self.clock,
            method=method,
            wording_version=self.wording_version,
            source=source,
        )
        referral = self._referral_for(consent.id) or await create_referral(
            self.db,
            self.practice_client,
            consent_id=consent.id,
            housing_service_id=service.id,
            clock=self.clock,
        )
        if referrer is None and source == Source.CDS_HOOKS:
            referrer = account_for_ehr_user(self.db, self.practice_ods, recorded_by)
        if referrer is not None:
            referral = claim(self.db, referral.id, referrer) or referral
        if form is not None:
            referral = self._attach_form(referral.id, form)
        service = self.service_by_id(referral.housing_service_id) or service
        if not send or referral.status == ReferralStatus.SENT:
            sent = referral.status == ReferralStatus.SENT
            return ReferralOutcome(consent, referral, sent, service=service)
        return await self._send(consent, referral, service)

    async def decline(
        self, flag_id: str, *, recorded_by: str, reason: str, source: Source | str = Source.WEB
    ) -> ConsentRecord:
        """Declined, with the patient's reason; not asked again for the decline window."""
        routing = await self.route(flag_id, recorded_by=recorded_by)
        return await record_decision(
            self.db,
            self.practice_client,
            flag_id=flag_id,
            decision=ConsentDecision.DECLINED,
            recorded_by=recorded_by,
            recipient=recipient_of(routing.service or self.service),
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
        """Consent withdrawn: unsent referrals cancelled, sent ones recalled, Consent inactive.

        Each recall goes over its referral's service's transport; one that fails now is
        retried by the connector's schedule.
        """
        with self.db.session() as session:
            consent = session.get(ConsentRecord, consent_id)
            referral = session.exec(
                select(Referral).where(Referral.consent_id == consent_id)
            ).first()
        if consent is None or consent.practice_ods != self.practice_ods:
            raise ReferralError(f"consent {consent_id} not found", practice=self.practice_ods)
        routed = self.service_by_id(referral.housing_service_id) if referral else None
        recaller = Recaller(self.services, clock=self.clock, transports=self._fhir_transports())
        try:
            return await withdraw_consent(
                self.db,
                consent_id,
                recorded_by=recorded_by,
                reason=reason,
                clock=self.clock,
                recaller=recaller,
                practice_client=self.practice_client,
                recipient=recipient_of(routed or self.service),
            )
        finally:
            await recaller.aclose()

    def _fhir_transports(self) -> dict[str, Transport]:
        # The clients here are shared and closed by their owner, not by the recaller.
        found: dict[str, Transport] = {}
        for service in self.services:
            client = self.client_for(service)
            if client is not None:
                found[service.id] = FhirRestTransport(client)
        return found

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

    async def _send(
        self, consent: ConsentRecord, referral: Referral, service: HousingServiceConfig
    ) -> ReferralOutcome:
        client = self.client_for(service)
        try:
            # No pooled client (BaRS, HL7 v2, email): forward_referral opens the
            # service's own transport for this one send.
            sent = await forward_referral(
                self.db, client, referral.id, service, self.clock, http=self.http
            )
        except DeliveryError as exc:
            log.warning("referral not sent yet: %s", exc, extra={"referral": referral.id})
            return ReferralOutcome(consent, referral, False, exc.message, service)
        return ReferralOutcome(consent, sent, True, service=service)

    async def send_pending(self) -> list[str]:
        """Try again every referral of this practice not yet sent (the gate still decides)."""
        with self.db.session() as session:
            waiting = list(
                session.exec(
                    select(Referral.id, Referral.housing_service_id).where(
                        Referral.practice_ods == self.practice_ods,
                        col(Referral.status).in_(
                            [ReferralStatus.PENDING.value, ReferralStatus.FAILED.value]
                        ),
                    )
                )
            )
        sent = []
        for referral_id, service_id in waiting:
            service = self.service_by_id(service_id)
            if service is None:
                continue  # the delivery worker sends it
            try:
                await forward_referral(
                    self.db,
                    self.client_for(service),
                    referral_id,
                    service,
                    self.clock,
                    http=self.http,
                )
            except DeliveryError:
                continue
            sent.append(referral_id)
        return sent


def health_reason_of(flag: FlagRecord) -> str:
    """Why a flag was raised, in the words its rules wrote (e.g. "On COPD register since 2019")."""
    reasons = flag.reasons or [f"On {name} register" for name in flag.registers]
    text = "; ".join(reasons) or "On a register the practice has chosen"
    # ReferralForm.health_reason holds at most 300 characters.
    return text if len(text) <= 300 else text[:297] + "..."


def recipient_of(service: HousingServiceConfig) -> Recipient:
    """A housing service as a consent names it."""
    return Recipient(service.name, service.ods_code)
