"""The one card we show: offer a housing referral, two suggestions, a link, override reasons.

The patient is routed first, as the pop-up routes them (``referrals.routing``): the
offer names the service their postcode leads to. When the area's service needs the
tenure first, the card offers only the referral form (where it is asked). Outside
every service's area the card is information only: no service covers the address,
what to do instead, and nothing to consent to.

Card and suggestion uuids are derived from the flag and the hook call, so the same
call answered twice gives the same card, and feedback leads back to the flag.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from healthy_homes.config.models import CdsHooksConfig, FlagRulesConfig
from healthy_homes.consent.wording import consent_wording
from healthy_homes.fhir.systems import HH_BASE, HH_CODES
from healthy_homes.flags.cds_hooks.models import (
    JSON,
    Action,
    Card,
    Coding,
    Link,
    Source,
    Suggestion,
)
from healthy_homes.flags.fhir_flag import build_flag
from healthy_homes.referrals.routing import Routing
from healthy_homes.store.models import FlagStatus

NAMESPACE = uuid.UUID("6f1b7c1e-3c43-4d4f-9d53-6b0a8f0e5a11")
SUMMARY = "Offer a Healthy Homes referral: cold, damp or hazards at home"
TENURE_FIRST = (
    "The housing service for this patient's area depends on whether they own or rent "
    "their home: open the referral form, ask, and record consent there."
)
NO_SERVICE_SUMMARY = "Healthy Homes: no housing service covers this patient's address"
REFER = "Refer: patient consents"
DECLINE = "Patient declines"
OVERRIDE_SYSTEM = f"{HH_BASE}/CodeSystem/override-reason"
#: Override reason code → the flag outcome it records.
OVERRIDE_OUTCOMES = {
    "discuss-next-time": FlagStatus.SNOOZED,
    "not-appropriate": FlagStatus.NOT_APPROPRIATE,
    "already-supported": FlagStatus.NOT_APPROPRIATE,
    "patient-declined": FlagStatus.DECLINED,
}
OVERRIDE_DISPLAY = {
    "discuss-next-time": "Discuss next time",
    "not-appropriate": "Not appropriate for this patient",
    "already-supported": "Already getting help with their home",
    "patient-declined": "Patient declined",
}
TOPIC = Coding(system=HH_CODES, code="housing-referral", display="Housing referral")


class CardFlag(Protocol):
    """What a card needs of a flag (a FlagRecord, or the hot path's lighter row)."""

    @property
    def id(self) -> str: ...
    @property
    def patient_id(self) -> str: ...
    @property
    def practice_ods(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def fhir_flag_id(self) -> str | None: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def priority(self) -> int: ...


def card_uuid(flag_id: str, hook_instance: uuid.UUID) -> uuid.UUID:
    """The card's uuid for this flag in this hook call."""
    return uuid.uuid5(NAMESPACE, f"{flag_id}:{hook_instance}")


def suggestion_uuid(card: uuid.UUID | str, which: str) -> uuid.UUID:
    """The uuid of the card's 'refer' or 'decline' suggestion."""
    return uuid.uuid5(NAMESPACE, f"{card}:{which}")


@lru_cache(maxsize=4096)
def _inactive_flag(
    flag_id: str, patient_id: str, practice: str, start: datetime, fhir_id: str
) -> JSON:
    """Our Flag as the EHR should store it once acted on (built once per flag)."""
    resource = build_flag(
        flag_id=flag_id, patient_id=patient_id, practice_ods=practice, start=start, active=False
    )
    resource["id"] = fhir_id
    return resource


def _close_flag_actions(flag: CardFlag) -> list[Action] | None:
    if flag.fhir_flag_id is None:
        return None
    resource = _inactive_flag(
        flag.id, flag.patient_id, flag.practice_ods, flag.created_at, flag.fhir_flag_id
    )
    return [
        Action(
            type="update",
            description="Close the Healthy Homes prompt in the record",
            resource=resource,
        )
    ]


def _override_reasons() -> list[Coding]:
    return [
        Coding(system=OVERRIDE_SYSTEM, code=code, display=display)
        for code, display in OVERRIDE_DISPLAY.items()
    ]


def _form_link(config: CdsHooksConfig, flag: CardFlag) -> Link:
    return Link.model_validate(
        {
            "label": "Open the referral form",
            "url": config.referral_page_url.format(flag_id=flag.id),
            "type": "absolute",
        }
    )


def _why(flag: CardFlag) -> str:
    return "; ".join(flag.reasons) or "On a register the practice has chosen"


def _card_without_offer(
    flag: CardFlag, card_id: uuid.UUID, config: CdsHooksConfig, routing: Routing, indicator: str
) -> Card:
    if routing.can_ask:
        # Consent cannot be taken in one click before the tenure decides the service.
        summary, detail, links = SUMMARY, TENURE_FIRST, [_form_link(config, flag)]
    else:
        # Nothing to agree to: offering a referral nobody would receive misleads the patient.
        summary, detail, links = NO_SERVICE_SUMMARY, routing.message, None
        indicator = "info"
    return Card.model_validate(
        {
            "uuid": card_id,
            "summary": summary,
            "detail": f"**Why flagged:** {_why(flag)}.\n\n{detail}",
            "indicator": indicator,
            "source": Source(label=config.source_label, url=config.source_url, topic=TOPIC),
            "overrideReasons": _override_reasons(),
            "links": links,
        }
    )


def build_card(
    flag: CardFlag,
    *,
    hook_instance: uuid.UUID,
    config: CdsHooksConfig,
    rules: FlagRulesConfig,
    routing: Routing,
    wording_version: str,
) -> Card:
    """The card for one open flag, offering the service ``routing`` chose (or saying none)."""
    card_id = card_uuid(flag.id, hook_instance)
    indicator = "warning" if flag.priority >= rules.warning_priority else "info"
    if routing.service is None:
        return _card_without_offer(flag, card_id, config, routing, indicator)
    housing_name = routing.service.name
    detail = (
        f"**Why:** {_why(flag)}.\n\n"
        f"**Refers to:** {housing_name}.\n\n"
        f'**Ask:** "{consent_wording(housing_name, wording_version)}"\n\n'
        f"Choose *{REFER}* only if the patient agrees (consent wording {wording_version}); "
        f"the referral is sent to {housing_name} at once with contact details only. To add "
        "their answers (tenure, concerns, best time to call), open the referral form instead."
    )
    actions = _close_flag_actions(flag)
    return Card(
        uuid=card_id,
        summary=SUMMARY,
        detail=detail,
        indicator="warning" if indicator == "warning" else "info",
        source=Source(label=config.source_label, url=config.source_url, topic=TOPIC),
        suggestions=[
            Suggestion(label=REFER, uuid=suggestion_uuid(card_id, "refer"), actions=actions),
            Suggestion(label=DECLINE, uuid=suggestion_uuid(card_id, "decline"), actions=actions),
        ],
        selectionBehavior="at-most-one",
        overrideReasons=_override_reasons(),
        links=[_form_link(config, flag)],
    )
