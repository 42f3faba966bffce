"""The health reason in the pop-up, over real HTTP: shared only if practice and patient agree.

The practice's ``share_health_reason`` decides whether the referral form offers the
checkbox; the words sent are the flag's own reasons, written on the server, never
what the page posts. The FHIR payload the housing server received is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from healthy_homes.config.models import Settings
from healthy_homes.consent.wording import CURRENT_VERSION
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.store.models import ConsentRecord, Referral
from tests.web import test_popup_routing as routing
from tests.web.world import PopupWorld, build_world

pytestmark = pytest.mark.e2e

CHECKBOX = "The patient agrees we may tell housing why they were flagged"
TYPED = "Typed by the clinician, not from the flag"


def _world(tmp: Any, *, share: bool) -> Iterator[PopupWorld]:
    world = build_world(tmp, patients=120)
    data = world.settings.model_dump(mode="json")
    data["practices"][0]["share_health_reason"] = share
    world.settings = Settings.model_validate(data)
    world.start_popup()
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture(scope="module")
def sharing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PopupWorld]:
    yield from _world(tmp_path_factory.mktemp("health-reason-on"), share=True)


@pytest.fixture(scope="module")
def not_sharing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PopupWorld]:
    yield from _world(tmp_path_factory.mktemp("health-reason-off"), share=False)


class Page(routing.Page):
    """A signed-in clinician's page, with its HTML and a consent post."""

    def __init__(self, world: PopupWorld) -> None:
        super().__init__(world)
        self.html = self.http.get("/").text

    def consent(self, flag_id: str, form: dict[str, Any]) -> httpx.Response:
        body = {"wording_version": CURRENT_VERSION, "form": form}
        return self.post(f"/api/flags/{flag_id}/consent", body)


def _referral(world: PopupWorld, patient: str) -> tuple[Referral, list[str]]:
    """The patient's referral as stored, and the notes of the ServiceRequest housing got."""
    with world.db.session() as session:
        [referral] = session.exec(select(Referral).where(Referral.patient_id == patient)).all()
    [request] = world.search(
        world.housing, "ServiceRequest", identifier=f"{HH_REFERRAL_ID}|{referral.id}"
    )
    return referral, [note["text"] for note in request.get("note") or []]


def _stored_reason(referral: Referral) -> Any:
    return (referral.dataset.get("referral_form") or {}).get("health_reason")


def test_practice_off_no_checkbox_and_a_posted_reason_is_refused(not_sharing) -> None:
    world = not_sharing
    page = Page(world)
    assert CHECKBOX not in page.html and "health_reason_consented" not in page.html

    patient = world.take_patient()
    flag_id = world.flag_of(patient).id
    refused = page.consent(flag_id, {"health_reason": TYPED, "health_reason_consented": True})
    assert refused.status_code == 409
    assert "does not share a health reason" in refused.json()["error"]
    with world.db.session() as session:
        recorded = session.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient))
        assert list(recorded) == []

    # The agreement alone (a page that ticked it anyway) carries nothing.
    done = page.consent(flag_id, {"health_reason_consented": True})
    assert done.status_code == 200, done.text
    referral, notes = _referral(world, patient)
    assert _stored_reason(referral) is None
    assert not any("Health reason" in n for n in notes)
    page.http.close()


def test_practice_on_and_patient_agreed_the_flags_reason_reaches_housing(sharing) -> None:
    world = sharing
    page = Page(world)
    assert CHECKBOX in page.html
    patient = world.take_patient()
    flag = world.flag_of(patient)
    expected = "; ".join(flag.reasons)
    assert expected.startswith("On ")

    # What the page types is ignored: the words come from the flag.
    done = page.consent(flag.id, {"health_reason": TYPED, "health_reason_consented": True})
    assert done.status_code == 200, done.text
    referral, notes = _referral(world, patient)
    assert _stored_reason(referral) == expected
    assert f"Health reason (shared with consent): {expected}" in notes
    assert not any(TYPED in n for n in notes)
    page.http.close()


def test_practice_on_and_patient_did_not_agree_nothing_is_shared(sharing) -> None:
    world = sharing
    page = Page(world)
    patient = world.take_patient()
    flag = world.flag_of(patient)
    done = page.consent(flag.id, {"tenure": "owner-occupier"})
    assert done.status_code == 200, done.text
    referral, notes = _referral(world, patient)
    assert _stored_reason(referral) is None
    assert "Tenure: owner-occupier" in notes
    assert not any("Health reason" in n for n in notes)
    page.http.close()
