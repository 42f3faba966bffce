"""'Consent and refer' sends at once over the routed service's own transport, not only FHIR.

The housing service takes HL7 v2 over MLLP (a real receiver on a loopback port): the
clinician's consent delivers the REF^I12 there and then; the outbox entry is closed,
so the delivery worker sends nothing more. With the receiver down, the consent still
stands and the worker delivers once it is back.
"""

from __future__ import annotations

from sqlmodel import select

from healthy_homes.config.models import DeliveryConfig
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.fhir.client import FhirClient
from healthy_homes.mock_server.mllp import MllpReceiver
from healthy_homes.referrals.transports.hl7v2 import control_id
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, OutboxState, Referral, ReferralStatus
from tests.consent.conftest import desk_for, flag_for
from tests.flags.world import CLINICIAN, PRACTICE
from tests.transports.envelopes import hl7v2_service


def _outbox(db: Database, referral_id: str) -> OutboxEntry:
    with db.session() as session:
        query = select(OutboxEntry).where(OutboxEntry.referral_id == referral_id)
        return session.exec(query).one()


async def test_consent_sends_to_an_hl7_v2_service_at_once(db, practice, clock) -> None:
    receiver = await MllpReceiver().start()
    service = hl7v2_service(receiver.port)
    try:
        async with FhirClient(practice.base_url, practice=PRACTICE) as practice_client:
            desk = desk_for(db, practice_client, service, clock)
            flag = await flag_for(desk)
            outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
        referral_id = outcome.referral.id
        assert outcome.sent and outcome.error is None and outcome.service == service
        assert list(receiver.referrals) == [referral_id]
        with db.session() as session:
            row = session.get(Referral, referral_id)
        assert row is not None and row.status == ReferralStatus.SENT
        assert row.task_status == "received" and row.remote_task_url == control_id(referral_id)
        assert _outbox(db, referral_id).state == OutboxState.DELIVERED
        worker = DeliveryWorker(db, [service], DeliveryConfig(), clock=clock)
        assert (await worker.run_once()).delivered == 0  # nothing left for it
        await worker.aclose()
        assert len([m for m in receiver.received if "REF^I12" in m]) == 1
    finally:
        await receiver.close()


async def test_receiver_down_the_consent_stands_and_the_worker_sends_later(
    db, practice, clock
) -> None:
    receiver = await MllpReceiver().start()
    port = receiver.port
    await receiver.close()  # the housing system is away at the moment of consent
    service = hl7v2_service(port)
    async with FhirClient(practice.base_url, practice=PRACTICE) as practice_client:
        desk = desk_for(db, practice_client, service, clock)
        flag = await flag_for(desk)
        outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
    assert not outcome.sent and outcome.error
    assert "999" not in outcome.error  # no NHS number in what the page is told
    with db.session() as session:
        row = session.get(Referral, outcome.referral.id)
    assert row is not None and row.status != ReferralStatus.SENT
    receiver = await MllpReceiver().start(port=port)
    try:
        worker = DeliveryWorker(db, [service], DeliveryConfig(), clock=clock)
        assert (await worker.run_once()).delivered == 1
        await worker.aclose()
        assert list(receiver.referrals) == [outcome.referral.id]
    finally:
        await receiver.close()
