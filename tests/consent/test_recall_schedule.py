"""Recalls go over each service's own transport, and a failed one is retried on the schedule.

The housing service here takes HL7 v2 over MLLP (no FHIR anywhere on its side): the
referral is delivered at consent over MLLP, the receiver goes away, consent is
withdrawn (the recall fails), and the connector's scheduled recall job delivers the
REF^I14 once the receiver is back. Time is a FixedClock; the job is run by calling
what the scheduler would call, so nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from healthy_homes.config.models import (
    DeliveryConfig,
    Hl7v2HousingService,
    Settings,
)
from healthy_homes.connector.closed_loop import ClosedLoop, add_recall_job
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.connector.scheduler import build_scheduler
from healthy_homes.connector.service import ConnectorService
from healthy_homes.fhir.client import FhirClient
from healthy_homes.mock_server.mllp import MllpReceiver
from healthy_homes.referrals.forward import envelope_for
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
from healthy_homes.store.models import Referral, ReferralStatus
from tests.consent.conftest import desk_for, everything, flag_for
from tests.flags.world import CLINICIAN, PRACTICE


def _v2(port: int) -> Hl7v2HousingService:
    return Hl7v2HousingService(
        id="coast-v2",
        name="Coast & Country Housing",
        ods_code="H1234",
        transport="hl7v2",
        mllp_host="127.0.0.1",
        mllp_port=port,
        timeout_seconds=5,
    )


async def test_a_failed_recall_reaches_an_hl7_receiver_on_the_schedule(db, practice, clock):
    receiver = await MllpReceiver().start()
    port = receiver.port
    service = _v2(port)
    async with FhirClient(practice.base_url, practice=PRACTICE) as practice_client:
        desk = desk_for(db, practice_client, service, clock)
        flag = await flag_for(desk)
        outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
        assert outcome.sent and outcome.service == service  # sent at once over MLLP
        worker = DeliveryWorker(db, [service], DeliveryConfig(), clock=clock)
        assert (await worker.run_once()).delivered == 0  # nothing left for the worker
        await worker.aclose()
        referral_id = outcome.referral.id
        assert list(receiver.referrals) == [referral_id]

        await receiver.close()  # the housing system goes away
        withdrawn = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
        assert withdrawn.pending == [referral_id] and withdrawn.recalled == []

        loop = ClosedLoop(db, [service], {}, clock, recall_minutes=5)
        scheduler = AsyncIOScheduler(timezone="Europe/London")
        add_recall_job(scheduler, loop)
        [job] = scheduler.get_jobs()
        assert job.id == "referrals:recall" and job.max_instances == 1
        assert job.trigger.interval == timedelta(minutes=5)
        try:
            assert await job.func() == []  # still down: stays due
            receiver = await MllpReceiver().start(port=port)  # back on the same address
            clock.advance(timedelta(minutes=5))
            assert await job.func() == [referral_id]
            assert await job.func() == []  # delivered once, not again
        finally:
            await loop.aclose()
            await receiver.close()
    cancels = [m for m in receiver.received if "REF^I14" in m]
    assert len(cancels) == 1 and receiver.cancelled == {referral_id}
    with db.session() as session:
        row = session.get(Referral, referral_id)
    assert row is not None and row.status == ReferralStatus.CANCELLED
    assert row.remote_cancelled_at is not None


async def test_the_connector_schedules_recalls_with_the_closed_loop(db, clock):
    service = _v2(2575)
    settings = Settings(housing_services=[service])
    async with ConnectorService(settings, db, clock) as connector:
        loop = ClosedLoop(db, [service], {}, clock)
        scheduler = build_scheduler(connector, None, loop)
        assert {"referrals:loop", "referrals:recall"} <= {j.id for j in scheduler.get_jobs()}
        await loop.aclose()


async def test_a_send_recorded_after_the_withdrawal_is_recalled_by_the_schedule(desk, housing):
    flag = await flag_for(desk)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN, send=False)
    envelope = envelope_for(desk.db, outcome.referral.id, desk.service)  # the worker's claim
    assert envelope is not None
    withdrawn = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
    # An attempt had started, so a recall went at once; the housing service held nothing yet.
    assert withdrawn.recalled == [outcome.referral.id]
    assert everything(housing.base_url, "Task") == []
    # ...but the send was on the wire, and its success is recorded after the recall.
    await FhirRestTransport(desk.housing_client).deliver(envelope)
    desk.clock.advance(timedelta(seconds=1))
    with desk.db.session() as session:
        row = session.get(Referral, outcome.referral.id)
        row.status, row.sent_at = ReferralStatus.SENT, desk.clock.now()  # type: ignore[union-attr]
        session.add(row)
    assert everything(housing.base_url, "Task")[0]["status"] == "requested"

    loop = ClosedLoop(desk.db, [desk.service], {}, desk.clock)
    try:
        assert await loop.recall_pending() == [outcome.referral.id]
        assert await loop.recall_pending() == []  # done: not looked at again
    finally:
        await loop.aclose()
    assert everything(housing.base_url, "Task")[0]["status"] == "cancelled"
    with desk.db.session() as session:
        row = session.get(Referral, outcome.referral.id)
    assert row is not None and row.status == ReferralStatus.CANCELLED
