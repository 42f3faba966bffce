"""Withdrawal: unsent referrals cancelled, sent ones recalled, the record's Consent inactive."""

from __future__ import annotations

import pytest

from healthy_homes.consent.withdrawal import Recaller, retry_recalls
from healthy_homes.errors import ReferralError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.store.models import Referral, ReferralStatus
from tests.consent.conftest import everything, flag_for
from tests.flags.world import CLINICIAN, PRACTICE


async def test_unsent_referral_is_cancelled_and_never_leaves(desk, practice, housing):
    flag = await flag_for(desk)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN, send=False)
    result = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN, reason="changed mind")
    assert result.cancelled == [outcome.referral.id] and result.recalled == []
    assert result.consent.withdrawn_by == CLINICIAN
    assert result.consent.withdrawal_reason == "changed mind"
    with pytest.raises(ReferralError, match="cancelled"):
        await forward_referral(
            desk.db, desk.housing_client, outcome.referral.id, desk.service, desk.clock
        )
    assert everything(housing.base_url, "ServiceRequest") == []
    [consent] = everything(practice.base_url, "Consent")
    assert consent["status"] == "inactive"


async def test_sent_referral_is_recalled_once(desk, practice, housing):
    flag = await flag_for(desk)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
    assert outcome.sent
    result = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
    assert result.recalled == [outcome.referral.id] and result.pending == []
    [task] = everything(housing.base_url, "Task")
    [request] = everything(housing.base_url, "ServiceRequest")
    assert task["status"] == "cancelled"
    assert task["statusReason"] == {"text": "consent withdrawn"}
    assert request["status"] == "revoked"
    versions = (task["meta"]["versionId"], request["meta"]["versionId"])
    again = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
    assert again.recalled == [] and again.cancelled == []
    [task] = everything(housing.base_url, "Task")
    [request] = everything(housing.base_url, "ServiceRequest")
    assert (task["meta"]["versionId"], request["meta"]["versionId"]) == versions
    [consent] = everything(practice.base_url, "Consent")
    assert consent["status"] == "inactive"
    with desk.db.session() as session:
        row = session.get(Referral, outcome.referral.id)
    assert row.status == ReferralStatus.CANCELLED and row.remote_cancelled_at is not None  # type: ignore[union-attr]


async def test_a_send_whose_answer_was_lost_is_recalled_too(desk, housing):
    flag = await flag_for(desk)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
    with desk.db.session() as session:  # as if we crashed before recording the send
        row = session.get(Referral, outcome.referral.id)
        row.status, row.sent_at = ReferralStatus.PENDING, None  # type: ignore[union-attr]
        session.add(row)
    result = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
    assert result.recalled == [outcome.referral.id]
    assert everything(housing.base_url, "Task")[0]["status"] == "cancelled"


async def test_recall_waits_for_an_unreachable_housing_service(desk, housing):
    flag = await flag_for(desk)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
    down = FhirClient("http://127.0.0.1:9/fhir", policy=RetryPolicy(max_attempts=1))
    desk.housing_client = down
    try:
        result = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
    finally:
        await down.aclose()
    assert result.pending == [outcome.referral.id] and result.recalled == []
    assert everything(housing.base_url, "Task")[0]["status"] == "requested"
    recaller = Recaller([desk.service], clock=desk.clock)  # builds the service's own transport
    try:
        recalled = await retry_recalls(desk.db, recaller, desk.clock, PRACTICE)
        assert await retry_recalls(desk.db, recaller, desk.clock, PRACTICE) == []
    finally:
        await recaller.aclose()
    assert recalled == [outcome.referral.id]
    assert everything(housing.base_url, "Task")[0]["status"] == "cancelled"
