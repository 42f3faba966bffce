"""Feedback into the flag lifecycle: accepted suggestions and overrides, with reasons."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from healthy_homes.flags.cds_hooks.cards import OVERRIDE_SYSTEM
from healthy_homes.flags.cds_hooks.models import FeedbackRequest
from healthy_homes.flags.transitions import flags_for_patient
from healthy_homes.store.models import ConsentDecision, ConsentRecord, FlagStatus
from tests.cds_hooks.ehr import SERVICE, SERVICE_URL, bearer, hook_body, token
from tests.flags.world import NOW, PRACTICE, patient

USER = "Practitioner/dr-demo"


async def card_for(cds: httpx.AsyncClient, patient_id: str, index: int) -> dict[str, Any]:
    body = hook_body(patient_id, prefetch={"patient": patient(patient_id, index)})
    answer = await cds.post(f"/cds-services/{SERVICE}", json=body, headers=bearer(token(NOW)))
    [card] = answer.json()["cards"]
    return card


async def send(cds: httpx.AsyncClient, *items: dict[str, Any], aud: str = SERVICE_URL) -> int:
    body = {"feedback": list(items)}
    FeedbackRequest.model_validate(body)  # what we send is what the spec defines
    answer = await cds.post(
        f"/cds-services/{SERVICE}/feedback", json=body, headers=bearer(token(NOW, aud=aud))
    )
    return answer.status_code


def accepted(card: dict[str, Any], which: int) -> dict[str, Any]:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][which]["uuid"]}],
        "outcomeTimestamp": "2026-11-24T09:03:00Z",
    }


def overridden(card: dict[str, Any], code: str | None = None, comment: str | None = None) -> dict:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-24T09:03:00Z",
    }
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"system": OVERRIDE_SYSTEM, "code": code}
    if comment:
        reason["userComment"] = comment
    if reason:
        item["overrideReason"] = reason
    return item


def everything(base_url: str, resource_type: str) -> list[dict[str, Any]]:
    bundle = httpx.get(f"{base_url}/{resource_type}", params={"_count": "100"}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


async def test_refer_accepted_records_consent_and_sends_the_referral(
    cds, flagged, practice, housing
) -> None:
    card = await card_for(cds, "p1", 1)
    assert await send(cds, accepted(card, 0)) == 200
    [flag] = flags_for_patient(flagged, PRACTICE, "p1")
    assert flag.status == FlagStatus.RETIRED and flag.outcome == "accepted"
    assert flag.outcome_by == USER
    with flagged.session() as session:
        [consent] = session.exec(select(ConsentRecord)).all()
    assert (consent.decision, consent.recorded_by, consent.method) == (
        ConsentDecision.GIVEN,
        USER,
        "verbal",
    )
    assert consent.wording_version == "2026-1"
    assert len(everything(housing.base_url, "ServiceRequest")) == 1
    [record] = everything(practice.base_url, "Consent")
    assert record["provision"]["type"] == "permit"
    statuses = {
        f["subject"]["reference"]: f["status"] for f in everything(practice.base_url, "Flag")
    }
    assert statuses["Patient/p1"] == "inactive"
    # Reported twice (the spec allows it): nothing more happens.
    assert await send(cds, accepted(card, 0)) == 200
    assert len(everything(housing.base_url, "ServiceRequest")) == 1
    assert len(everything(practice.base_url, "Consent")) == 1


async def test_decline_accepted_records_a_decline(cds, flagged, practice, housing) -> None:
    card = await card_for(cds, "p0", 0)
    assert await send(cds, accepted(card, 1)) == 200
    with flagged.session() as session:
        [consent] = session.exec(select(ConsentRecord)).all()
    assert consent.decision == ConsentDecision.DECLINED
    assert consent.reason == "declined when offered"
    assert everything(housing.base_url, "ServiceRequest") == []


async def test_overrides_map_to_outcomes_with_their_reasons(cds, flagged, practice) -> None:
    snooze = await card_for(cds, "p0", 0)
    dismiss = await card_for(cds, "p1", 1)
    assert (
        await send(
            cds,
            overridden(snooze, "discuss-next-time", "short of time"),
            overridden(dismiss),
            aud=f"{SERVICE_URL}/feedback",  # either URL of the service is accepted
        )
        == 200
    )
    [p0] = flags_for_patient(flagged, PRACTICE, "p0")
    [p1] = flags_for_patient(flagged, PRACTICE, "p1")
    assert p0.status == FlagStatus.SNOOZED
    assert p0.outcome_reason == "Discuss next time: short of time"
    assert p1.status == FlagStatus.RETIRED and p1.outcome == "dismissed"
    statuses = {
        f["subject"]["reference"]: f["status"] for f in everything(practice.base_url, "Flag")
    }
    assert statuses == {"Patient/p0": "active", "Patient/p1": "inactive"}


async def test_not_appropriate_and_unknown_cards(cds, flagged) -> None:
    card = await card_for(cds, "p0", 0)
    unknown = {**overridden(card), "card": "00000000-0000-4000-8000-000000000000"}
    assert await send(cds, unknown, overridden(card, "not-appropriate")) == 200
    [p0] = flags_for_patient(flagged, PRACTICE, "p0")
    assert p0.outcome == "not-appropriate"


async def test_feedback_needs_a_valid_token_and_body(cds) -> None:
    answer = await cds.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": []})
    assert answer.status_code == 401
    bad = await cds.post(
        f"/cds-services/{SERVICE}/feedback",
        json={"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "now"}]},
        headers=bearer(token(NOW)),
    )
    assert bad.status_code == 400
