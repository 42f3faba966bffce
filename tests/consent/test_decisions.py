"""Consent, decline and 'discuss next time', each one call; consent also refers and sends."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from healthy_homes.consent.service import record_decision
from healthy_homes.errors import ConsentError, FlagError
from healthy_homes.fhir.systems import HH_CONSENT_ID, ODS_ORGANISATION
from healthy_homes.referrals.dataset import Concern, ContactMethod, ReferralForm, Tenure
from healthy_homes.store.models import ConsentDecision, ConsentRecord, FlagRecord, FlagStatus
from tests.consent.conftest import everything, flag_for
from tests.flags.world import CLINICIAN, HOUSING_ODS, NOW

FORM = ReferralForm(
    tenure=Tenure.PRIVATE_RENTED,
    concerns=[Concern.COLD_OR_DAMP, Concern.FALL_HAZARDS],
    contact_method=ContactMethod.PHONE,
    contact_times="weekday mornings",
    staff_risks="large dog",
    staff_risks_consented=True,
)


async def test_consent_records_who_how_when_and_wording_then_refers(desk, practice, housing):
    flag = await flag_for(desk)
    desk.mark_shown(flag.id, by=CLINICIAN)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN, method="written", form=FORM)
    assert outcome.sent and outcome.error is None
    consent = outcome.consent
    assert (consent.decision, consent.method, consent.recorded_by) == (
        ConsentDecision.GIVEN,
        "written",
        CLINICIAN,
    )
    assert consent.wording_version == "2026-1" and consent.recorded_at == NOW

    [record] = everything(practice.base_url, "Consent")
    assert record["status"] == "active"
    assert record["identifier"] == [{"system": HH_CONSENT_ID, "value": consent.id}]
    assert record["scope"]["coding"][0]["code"] == "patient-privacy"
    assert record["patient"] == {"reference": "Patient/p0"}
    provision = record["provision"]
    assert provision["type"] == "permit"
    assert provision["purpose"][0]["code"] == "TREAT"  # direct care
    assert provision["actor"][0]["reference"]["identifier"] == {
        "system": ODS_ORGANISATION,
        "value": HOUSING_ODS,
    }
    assert "2026-1" in record["sourceAttachment"]["title"]

    with desk.db.session() as session:
        row = session.get(FlagRecord, flag.id)
    assert row.status == FlagStatus.RETIRED and row.outcome == "accepted"  # type: ignore[union-attr]
    [fhir_flag] = everything(practice.base_url, "Flag")
    assert fhir_flag["status"] == "inactive"

    [request] = everything(housing.base_url, "ServiceRequest")
    assert [n["text"] for n in request["note"]] == [
        "Tenure: private rented",
        "Main concerns: cold or damp; trip and fall hazards",
        "Best contact: phone call",
        "Best times: weekday mornings",
        "Risks to visiting staff (shared with consent): large dog",
    ]


async def test_repeating_consent_changes_nothing(desk, practice, housing):
    flag = await flag_for(desk)
    first = await desk.consent(flag.id, recorded_by=CLINICIAN)
    again = await desk.consent(flag.id, recorded_by=CLINICIAN)
    assert again.consent.id == first.consent.id and again.referral.id == first.referral.id
    assert len(everything(practice.base_url, "Consent")) == 1
    assert {k: len(everything(housing.base_url, k)) for k in ("ServiceRequest", "Task")} == {
        "ServiceRequest": 1,
        "Task": 1,
    }


async def test_decline_with_reason_writes_a_deny_consent_and_sends_nothing(desk, practice, housing):
    flag = await flag_for(desk)
    declined = await desk.decline(flag.id, recorded_by=CLINICIAN, reason="landlord will object")
    assert declined.decision == ConsentDecision.DECLINED
    assert declined.reason == "landlord will object"
    [record] = everything(practice.base_url, "Consent")
    assert record["provision"]["type"] == "deny"
    assert everything(housing.base_url, "ServiceRequest") == []
    changed_mind = await desk.consent(flag.id, recorded_by=CLINICIAN)  # allowed after a no
    assert changed_mind.sent
    by_decision = {
        c["provision"]["type"]: c["status"] for c in everything(practice.base_url, "Consent")
    }
    assert by_decision == {"deny": "inactive", "permit": "active"}  # the no is superseded
    with pytest.raises(ConsentError, match="withdraw"):
        await desk.decline(flag.id, recorded_by=CLINICIAN, reason="changed again")


async def test_discuss_next_time_snoozes_without_any_consent(desk, practice, housing):
    flag = await flag_for(desk)
    snoozed = await desk.discuss_next_time(flag.id, recorded_by=CLINICIAN)
    assert snoozed.status == FlagStatus.SNOOZED
    with desk.db.session() as session:
        assert session.get(ConsentRecord, flag.id) is None
    assert everything(practice.base_url, "Consent") == []
    assert everything(practice.base_url, "Flag")[0]["status"] == "active"


async def test_the_original_record_decision_signature_still_works(desk, practice):
    flag = await flag_for(desk)
    consent = await record_decision(
        desk.db,
        desk.practice_client,
        flag_id=flag.id,
        decision=ConsentDecision.GIVEN,
        recorded_by=CLINICIAN,
        recipient=desk.recipient,
        clock=desk.clock,
    )
    assert consent.fhir_consent_id is not None


async def test_refusals(desk):
    flag = await flag_for(desk)
    with pytest.raises(ConsentError, match="wording"):
        await record_decision(
            desk.db,
            desk.practice_client,
            flag_id=flag.id,
            decision=ConsentDecision.GIVEN,
            recorded_by=CLINICIAN,
            recipient=desk.recipient,
            clock=desk.clock,
            wording_version="1999-9",
        )
    with pytest.raises(FlagError):
        desk.flag("no-such-flag")
    with pytest.raises(ValidationError, match="only with the patient's consent"):
        ReferralForm(staff_risks="aggressive dog")
