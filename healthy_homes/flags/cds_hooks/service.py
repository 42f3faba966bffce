"""The CDS Hooks services: which hooks, and how a call becomes (at most) one card.

The hot path reads flag state from our store and nothing else: the EHR is asked for
nothing when the patient is not flagged (most calls) or when the Patient was
prefetched. No card unless flagged: alert fatigue is the enemy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, select

from healthy_homes.clock import Clock
from healthy_homes.config.models import Settings
from healthy_homes.consent.wording import CURRENT_VERSION
from healthy_homes.errors import CdsHooksError
from healthy_homes.flags.cds_hooks.cards import build_card
from healthy_homes.flags.cds_hooks.clients import PracticeActions
from healthy_homes.flags.cds_hooks.jwt_auth import Caller, KeySets, TokenVerifier
from healthy_homes.flags.cds_hooks.models import (
    AppointmentBookContext,
    CdsResponse,
    DiscoveryResponse,
    EncounterStartContext,
    HookRequest,
    PatientViewContext,
    ServiceDescriptor,
)
from healthy_homes.flags.cds_hooks.prefetch import PREFETCH, patient_for
from healthy_homes.flags.cds_hooks.shown import Shown, ShownRecorder
from healthy_homes.flags.rules import patient_is_current
from healthy_homes.flags.transitions import OPEN
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class HookService:
    """One service we publish: its id, the hook it answers and that hook's context."""

    id: str
    hook: str
    title: str
    description: str
    context: type[PatientViewContext | AppointmentBookContext | EncounterStartContext]


SERVICES = {
    s.id: s
    for s in (
        HookService(
            "healthy-homes-patient-view",
            "patient-view",
            "Healthy Homes: offer a housing referral",
            "When a flagged patient's record is opened, prompts the clinician to offer a "
            "referral to the local Safe and Healthy Homes service.",
            PatientViewContext,
        ),
        HookService(
            "healthy-homes-appointment-book",
            "appointment-book",
            "Healthy Homes: offer a housing referral at booking",
            "When an appointment is booked for a flagged patient, reminds staff to offer a "
            "housing referral at that appointment.",
            AppointmentBookContext,
        ),
        HookService(
            "healthy-homes-encounter-start",
            "encounter-start",
            "Healthy Homes: offer a housing referral in the consultation",
            "When a consultation with a flagged patient starts, prompts the clinician to "
            "offer a housing referral.",
            EncounterStartContext,
        ),
    )
}


def parse_body(model: type[M], data: bytes | dict[str, Any], what: str) -> M:
    """``data`` as ``model``, or a 400 that names the bad fields but none of their values."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        # Field names only: values could be patient data.
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise CdsHooksError(f"malformed {what}: check {', '.join(fields) or 'the body'}") from None


_FLAG = FlagRecord.__table__  # type: ignore[attr-defined]
#: Built once: the hot path only binds two values (no statement building per call).
SHOWABLE = (
    select(_FLAG)
    .where(
        _FLAG.c.practice_ods == bindparam("practice"),
        _FLAG.c.patient_id == bindparam("patient"),
        _FLAG.c.status.in_(sorted(OPEN)),
    )
    .order_by(_FLAG.c.priority.desc(), _FLAG.c.created_at.desc())
)


@dataclass(frozen=True)
class OpenFlag:
    """The columns a card needs, read without building an ORM object (hot path)."""

    id: str
    patient_id: str
    practice_ods: str
    created_at: datetime
    fhir_flag_id: str | None
    reasons: list[str]
    priority: int


OPEN_FLAG_FIELDS = tuple(OpenFlag.__dataclass_fields__)


def discovery_document() -> DiscoveryResponse:
    """The services we publish, each asking only for the Patient to be prefetched."""
    return DiscoveryResponse(
        services=[
            ServiceDescriptor(
                hook=s.hook,
                id=s.id,
                title=s.title,
                description=s.description,
                prefetch=dict(PREFETCH),
            )
            for s in SERVICES.values()
        ]
    )


class CdsHooksService:
    """Discovery, hook calls and feedback for one deployment."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        *,
        actions: PracticeActions | None = None,
        jwks_transport: httpx.AsyncBaseTransport | None = None,
        fhir_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.cds_hooks
        self.db = db
        self.clock = clock
        self.keys = KeySets(self.config, clock, transport=jwks_transport)
        self.verifier = TokenVerifier(self.config, clock, self.keys)
        self.actions = actions or PracticeActions(settings, db, clock)
        self.http = httpx.AsyncClient(
            transport=fhir_transport, timeout=self.config.fetch_timeout_seconds
        )
        self.shown = ShownRecorder(db, clock)
        # A local SQLite read (an indexed lookup, well under a millisecond) costs less
        # than the hop to a worker thread; a database across the network gets the hop.
        self._inline_reads = db.url.startswith("sqlite")

    async def aclose(self) -> None:
        """Finish recording shown cards, then close every client."""
        await self.shown.wait()
        await self.http.aclose()
        await self.keys.aclose()
        await self.actions.aclose()

    def discovery(self) -> DiscoveryResponse:
        """``GET /cds-services``."""
        return discovery_document()

    def service(self, service_id: str) -> HookService:
        """A published service, or 404."""
        found = SERVICES.get(service_id)
        if found is None:
            error = CdsHooksError("no such CDS service")
            error.status_code = 404
            raise error
        return found

    async def authenticate(
        self, service_id: str, authorization: str | None, *, feedback: bool = False
    ) -> Caller:
        """The calling EHR, whose JWT must name this service's exact URL as audience."""
        url = self.config.service_url(self.service(service_id).id)
        audiences = [url, f"{url}/feedback"] if feedback else [url]
        return await self.verifier.verify(authorization, audiences)

    def showable_flag(self, practice: str, patient_id: str, now: datetime) -> OpenFlag | None:
        """The patient's open, unsnoozed flag of highest priority, if any."""
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                SHOWABLE, {"practice": practice, "patient": patient_id}
            ).mappings()
            for row in rows:
                if row["snoozed_until"] is None or row["snoozed_until"] <= now:
                    return OpenFlag(**{name: row[name] for name in OPEN_FLAG_FIELDS})
        return None

    async def cards(
        self, service_id: str, body: bytes, caller: Caller
    ) -> tuple[CdsResponse, Shown | None]:
        """Answer one hook call: a flagged patient's card (routed as the pop-up does), else none."""
        service = self.service(service_id)
        request = parse_body(HookRequest, body, "CDS Hooks request")
        if request.hook != service.hook:
            raise CdsHooksError(f"this service answers '{service.hook}'")
        context = parse_body(service.context, request.context, f"{service.hook} context")
        now = self.clock.now()
        if self._inline_reads:
            flag = self.showable_flag(caller.practice_ods, context.patientId, now)
        else:
            flag = await anyio.to_thread.run_sync(
                self.showable_flag, caller.practice_ods, context.patientId, now
            )
        if flag is None:
            return CdsResponse(cards=[]), None
        patient = await patient_for(request, context.patientId, caller, self.http)
        if patient_is_current(patient) is not None:
            return CdsResponse(cards=[]), None
        card = build_card(
            flag,
            hook_instance=request.hookInstance,
            config=self.config,
            rules=self.settings.flags,
            routing=self.actions.route(caller.practice_ods, patient),
            wording_version=CURRENT_VERSION,
        )
        return CdsResponse(cards=[card]), Shown(
            flag.id, str(card.uuid), context.userId, service.hook
        )
