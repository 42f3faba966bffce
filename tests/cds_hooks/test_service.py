"""CDS Hooks over HTTP (in process): discovery, cards only for flagged patients, prefetch rules."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from healthy_homes.flags.cds_hooks.models import Card, CdsResponse, DiscoveryResponse
from healthy_homes.flags.transitions import flags_for_patient, record_outcome
from healthy_homes.store.models import FlagEvent, FlagStatus
from tests.cds_hooks.conftest import settled
from tests.cds_hooks.ehr import SERVICE, bearer, hook_body, token
from tests.flags.world import CLINICIAN, NOW, PRACTICE, patient

P1 = patient("p1", 1)


async def call(
    cds: httpx.AsyncClient, body: dict[str, Any], service: str = SERVICE
) -> httpx.Response:
    aud = f"https://cds.example.org/cds-services/{service}"
    return await cds.post(
        f"/cds-services/{service}", json=body, headers=bearer(token(NOW, aud=aud))
    )


async def test_discovery_lists_three_hooks_asking_only_for_the_patient(cds) -> None:
    answer = await cds.get("/cds-services")
    assert answer.status_code == 200
    document = DiscoveryResponse.model_validate(answer.json())
    assert {s.hook for s in document.services} == {
        "patient-view",
        "appointment-book",
        "encounter-start",
    }
    for service in answer.json()["services"]:
        assert set(service) == {"hook", "id", "title", "description", "prefetch"}
        assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}"}


async def test_no_card_for_a_patient_without_a_flag(cds) -> None:
    answer = await call(cds, hook_body("p3", prefetch={"patient": patient("p3", 3)}))
    assert answer.status_code == 200
    assert answer.json() == {"cards": []}


async def test_a_flagged_patient_gets_one_card_with_what_the_spec_asks(cds, flagged) -> None:
    body = hook_body("p1", prefetch={"patient": P1})
    answer = await call(cds, body)
    assert answer.status_code == 200
    [card] = answer.json()["cards"]
    Card.model_validate(card)
    [flag] = flags_for_patient(flagged, PRACTICE, "p1")
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] == "warning"  # several registers including frailty
    assert card["source"]["label"] == "Healthy Homes"
    assert card["source"]["url"] == "https://hh.example.nhs.uk/about"
    assert card["source"]["topic"]["code"] == "housing-referral"
    assert "On High risk (frailty and housebound) register since 2019" in card["detail"]
    assert "2026-1" in card["detail"]  # the consent wording version shown
    refer, decline = card["suggestions"]
    assert (refer["label"], decline["label"]) == ("Refer: patient consents", "Patient declines")
    for suggestion in (refer, decline):
        uuid.UUID(suggestion["uuid"])
        [action] = suggestion["actions"]
        assert action["type"] == "update"
        assert action["resource"]["resourceType"] == "Flag"
        assert action["resource"]["id"] == flag.fhir_flag_id
        assert action["resource"]["status"] == "inactive"
    assert card["selectionBehavior"] == "at-most-one"
    assert card["links"] == [
        {
            "label": "Open the referral form",
            "url": f"https://hh.example.nhs.uk/referral/{flag.id}",
            "type": "absolute",
        }
    ]
    assert card["overrideReasons"] and all(r["display"] for r in card["overrideReasons"])

    # The card is recorded as shown, to the user in context, under the card's uuid.
    await settled(cds)
    with flagged.session() as session:
        shown = session.get(FlagEvent, card["uuid"])
    assert shown is not None and shown.kind == "shown"
    assert (shown.actor, shown.hook, shown.source) == (
        "Practitioner/dr-demo",
        "patient-view",
        "cds-hooks",
    )
    assert flags_for_patient(flagged, PRACTICE, "p1")[0].status == FlagStatus.SHOWN


async def test_the_same_hook_call_twice_is_the_same_card_shown_once(cds, flagged) -> None:
    body = hook_body("p0", prefetch={"patient": patient("p0", 0)})
    first, second = (await call(cds, body)).json(), (await call(cds, body)).json()
    assert first == second
    await settled(cds)
    with flagged.session() as session:
        shown = session.exec(select(FlagEvent).where(FlagEvent.kind == "shown")).all()
    assert len(shown) == 1


@pytest.mark.parametrize(
    ("service", "hook"),
    [
        ("healthy-homes-appointment-book", "appointment-book"),
        ("healthy-homes-encounter-start", "encounter-start"),
    ],
)
async def test_other_hooks_answer_too(cds, service: str, hook: str) -> None:
    answer = await call(cds, hook_body("p1", hook=hook, prefetch={"patient": P1}), service)
    assert answer.status_code == 200
    assert len(CdsResponse.model_validate(answer.json()).cards) == 1


async def test_prefetch_present_means_no_call_to_the_fhir_server(cds) -> None:
    # A server that is neither allowed nor reachable: any fetch would end in 412.
    body = hook_body(
        "p1",
        prefetch={"patient": P1},
        fhirServer="http://127.0.0.1:9/fhir",
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/Patient.read",
            "subject": "healthy-homes",
        },
    )
    answer = await call(cds, body)
    assert answer.status_code == 200 and len(answer.json()["cards"]) == 1


def _fhir_access(server: str) -> dict[str, Any]:
    return {
        "fhirServer": server,
        "fhirAuthorization": {
            "access_token": "opaque-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/Patient.read",
            "subject": "healthy-homes",
        },
    }


async def test_missing_prefetch_is_fetched_from_the_allowed_server(cds, practice) -> None:
    answer = await call(cds, hook_body("p1", **_fhir_access(practice.base_url)))
    assert answer.status_code == 200 and len(answer.json()["cards"]) == 1
    null_prefetch = hook_body("p1", prefetch={"patient": None}, **_fhir_access(practice.base_url))
    assert len((await call(cds, null_prefetch)).json()["cards"]) == 1


async def test_missing_prefetch_and_no_way_to_fetch_is_412(cds) -> None:
    assert (await call(cds, hook_body("p1"))).status_code == 412
    elsewhere = hook_body("p1", **_fhir_access("https://other-ehr.example.org/fhir"))
    answer = await call(cds, elsewhere)
    assert answer.status_code == 412 and "not allowed" in answer.json()["error"]
    # Nobody flagged: nothing is needed, so no 412.
    assert (await call(cds, hook_body("p3"))).json() == {"cards": []}


async def test_no_card_for_a_patient_who_has_died(cds) -> None:
    dead = patient("p1", 1, deceasedDateTime="2026-11-01")
    assert (await call(cds, hook_body("p1", prefetch={"patient": dead}))).json() == {"cards": []}


async def test_a_snoozed_flag_stays_quiet_until_the_snooze_ends(cds, flagged, clock) -> None:
    [flag] = flags_for_patient(flagged, PRACTICE, "p1")
    record_outcome(
        flagged,
        flag.id,
        FlagStatus.SNOOZED,
        by=CLINICIAN,
        clock=clock,
        snooze_for=timedelta(days=1),
    )
    body = {"patient": P1}
    assert (await call(cds, hook_body("p1", prefetch=body))).json() == {"cards": []}
    clock.advance(timedelta(days=1))
    answer = await cds.post(
        f"/cds-services/{SERVICE}",
        json=hook_body("p1", prefetch=body),
        headers=bearer(token(clock.now())),
    )
    assert len(answer.json()["cards"]) == 1


async def test_malformed_requests_are_400_without_echoing_values(cds) -> None:
    body = hook_body("p1", prefetch={"patient": P1})
    body["hookInstance"] = "9990000018"  # not a UUID, and looks like an NHS number
    answer = await call(cds, body)
    assert answer.status_code == 400
    assert "hookInstance" in answer.json()["error"] and "999" not in answer.text
    wrong = await call(cds, hook_body("p1", hook="encounter-start", prefetch={"patient": P1}))
    assert wrong.status_code == 400
    unknown = await cds.post("/cds-services/nope", json={}, headers=bearer(token(NOW)))
    assert unknown.status_code == 404
