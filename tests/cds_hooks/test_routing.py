"""CDS Hooks cards route each patient as the pop-up does, over HTTP.

In process (ASGI) where feedback's background send must be finished before we look;
the out-of-area card also over a real loopback port.

Two housing services: "Coast Homes" covers NE30 (the test patients' district) and
"City Homes" covers NE1 and is listed first, so the practice's default would be wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import Settings
from healthy_homes.flags.cds_hooks.app import create_app
from healthy_homes.flags.cds_hooks.cards import NO_SERVICE_SUMMARY, TENURE_FIRST
from healthy_homes.flags.cds_hooks.service import CdsHooksService
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentRecord, Referral
from tests.cds_hooks.conftest import REFERRAL_PAGE
from tests.cds_hooks.ehr import BASE, ISSUER, SERVICE, bearer, hook_body, jwks, token
from tests.cds_hooks.test_feedback import accepted, everything, send
from tests.flags.world import NOW, PRACTICE, patient


def _service(sid: str, name: str, url: str, districts: list[str], **more: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "name": name,
        "ods_code": f"HH{sid.upper()[:3]}",
        "fhir_base_url": url,
        "postcode_districts": districts,
        **more,
    }


def routed_settings(
    practice_url: str, city_url: str, coast_url: str, *, share: bool = False, **coast: Any
) -> Settings:
    """One practice that may refer to either service; routing picks by postcode."""
    practice = {"ods_code": PRACTICE, "name": "Test Surgery", "fhir_base_url": practice_url}
    return Settings.model_validate(
        {
            "practices": [practice | {"share_health_reason": share}],
            "housing_services": [
                _service("city", "City Homes", city_url, ["NE1"]),
                _service("coast", "Coast Homes", coast_url, ["NE30"], **coast),
            ],
            "cds_hooks": {
                "public_base_url": BASE,
                "referral_page_url": REFERRAL_PAGE,
                "source_url": "https://hh.example.nhs.uk/about",
                "issuers": [
                    {
                        "iss": ISSUER,
                        "practice_ods": PRACTICE,
                        "fhir_servers": [practice_url],
                        "jwks": jwks(("ES384", "ehr")),
                    }
                ],
            },
        }
    )


@pytest.fixture
def city(mock_fhir_factory) -> RunningMockServer:  # type: ignore[no-untyped-def]
    return mock_fhir_factory(mode="housing")


@pytest.fixture
def coast(mock_fhir_factory) -> RunningMockServer:  # type: ignore[no-untyped-def]
    return mock_fhir_factory(mode="housing")


async def _serve(
    settings: Settings, db: Database, clock: FixedClock, *, loopback: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    service = CdsHooksService(settings, db, clock)
    app = create_app(service)
    if loopback:
        with ServerThread(app) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                yield http
        return
    # In process, a response returns only after its background tasks (the referral).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as http:
        yield http
    await service.aclose()


@pytest.fixture
async def cds(
    flagged: Database,
    practice: RunningMockServer,
    city: RunningMockServer,
    coast: RunningMockServer,
    clock: FixedClock,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = routed_settings(practice.base_url, city.base_url, coast.base_url)
    async for http in _serve(settings, flagged, clock):
        yield http


async def _card(http: httpx.AsyncClient, record: dict[str, Any]) -> dict[str, Any]:
    body = hook_body(str(record["id"]), prefetch={"patient": record})
    answer = await http.post(f"/cds-services/{SERVICE}", json=body, headers=bearer(token(NOW)))
    assert answer.status_code == 200
    [card] = answer.json()["cards"]
    return card


async def test_in_area_card_names_the_routed_service_and_refers_there(
    cds: httpx.AsyncClient,
    flagged: Database,
    practice: RunningMockServer,
    city: RunningMockServer,
    coast: RunningMockServer,
) -> None:
    card = await _card(cds, patient("p1", 1))
    assert "**Refers to:** Coast Homes." in card["detail"]
    assert "City Homes" not in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == [
        "Refer: patient consents",
        "Patient declines",
    ]
    assert await send(cds, accepted(card, 0)) == 200
    with flagged.session() as session:
        [consent] = session.exec(select(ConsentRecord)).all()
        [referral] = session.exec(select(Referral)).all()
    assert referral.housing_service_id == "coast"
    assert len(everything(coast.base_url, "ServiceRequest")) == 1
    assert everything(city.base_url, "ServiceRequest") == []
    [record] = everything(practice.base_url, "Consent")
    actors = [a["reference"].get("display") for a in record["provision"].get("actor", [])]
    assert consent.decision == "given" and actors == ["Coast Homes"]


async def test_out_of_every_area_is_an_info_card_with_nothing_to_consent_to(
    flagged: Database,
    practice: RunningMockServer,
    city: RunningMockServer,
    coast: RunningMockServer,
    clock: FixedClock,
) -> None:
    elsewhere = patient("p1", 1)
    elsewhere["address"][0]["postalCode"] = "SW1A 1AA"
    settings = routed_settings(practice.base_url, city.base_url, coast.base_url)
    async for http in _serve(settings, flagged, clock, loopback=True):
        card = await _card(http, elsewhere)
    assert card["summary"] == NO_SERVICE_SUMMARY
    assert card["indicator"] == "info"
    assert "No housing service covers postcode district SW1A" in card["detail"]
    assert "local council's housing team" in card["detail"]
    assert "SW1A 1AA" not in card["detail"]  # the district only, never the postcode
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "links" not in card  # no referral form: there is no one to refer to
    assert "consent" not in card["detail"].lower()
    # The clinician can still say why it is not for them.
    assert {r["code"] for r in card["overrideReasons"]} >= {"not-appropriate"}
    with flagged.session() as session:
        assert session.exec(select(ConsentRecord)).all() == []
    assert everything(city.base_url, "ServiceRequest") == []
    assert everything(coast.base_url, "ServiceRequest") == []


async def test_a_service_that_needs_the_tenure_offers_only_the_referral_form(
    flagged: Database,
    practice: RunningMockServer,
    city: RunningMockServer,
    coast: RunningMockServer,
    clock: FixedClock,
) -> None:
    settings = routed_settings(
        practice.base_url, city.base_url, coast.base_url, tenures=["owner-occupier"]
    )
    async for http in _serve(settings, flagged, clock):
        card = await _card(http, patient("p1", 1))
    assert TENURE_FIRST in card["detail"]
    assert "suggestions" not in card  # one click cannot route without the tenure
    [link] = card["links"]
    assert link["label"] == "Open the referral form"


async def test_a_one_click_consent_never_carries_a_health_reason(
    flagged: Database,
    practice: RunningMockServer,
    city: RunningMockServer,
    coast: RunningMockServer,
    clock: FixedClock,
) -> None:
    # The practice shares reasons, but a card has no way to ask the patient: none leaves.
    settings = routed_settings(practice.base_url, city.base_url, coast.base_url, share=True)
    async for http in _serve(settings, flagged, clock):
        card = await _card(http, patient("p1", 1))
        assert await send(http, accepted(card, 0)) == 200
    [request] = everything(coast.base_url, "ServiceRequest")
    assert request["performer"][0]["display"] == "Coast Homes"
    assert not any("Health reason" in n["text"] for n in request.get("note") or [])
    with flagged.session() as session:
        [referral] = session.exec(select(Referral)).all()
    assert referral.dataset.get("referral_form") is None
