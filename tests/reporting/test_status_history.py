"""Every path that learns a referral's remote status writes its history exactly once.

The paths: the delivery worker's receipt (``outbox.mark_delivered``/``_many``), a direct
send (``forward_referral``), the demo's read of the housing Task (``refresh_status``) and
the closed loop (``record_status``: polls, BaRS responses, the inbox). Real receivers on
loopback (the MLLP receiver, the mock FHIR server in housing mode), both backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import col, select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FhirHousingService
from healthy_homes.connector.delivery import outbox
from healthy_homes.fhir.client import FhirClient
from healthy_homes.mock_server.mllp import MllpReceiver
from healthy_homes.mock_server.pytest_plugin import MockFhirFactory
from healthy_homes.referrals.forward import forward_referral, refresh_status
from healthy_homes.referrals.loop import record_status
from healthy_homes.reporting.funnel import funnel
from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral
from healthy_homes.store.reporting_models import ANY_REGISTER, ReferralStatusEvent
from tests.delivery.seed import SERVICE_ID, enqueue
from tests.transports.envelopes import hl7v2_service

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def mllp() -> AsyncIterator[MllpReceiver]:
    server = await MllpReceiver().start()
    yield server
    await server.close()


def history(db: Database, referral_id: str) -> list[tuple[str, datetime]]:
    """The referral's recorded statuses, oldest first."""
    with db.session() as session:
        rows = session.exec(
            select(ReferralStatusEvent)
            .where(ReferralStatusEvent.referral_id == referral_id)
            .order_by(col(ReferralStatusEvent.id))
        ).all()
    return [(row.status, row.at) for row in rows]


def task_status(db: Database, referral_id: str) -> str | None:
    with db.session() as session:
        row = session.get(Referral, referral_id)
    assert row is not None
    return row.task_status


def all_registers(
    db: Database, receipt_acknowledges: Collection[str] = ()
) -> tuple[int, int | None]:
    """(acknowledged, median seconds) of March's all-registers row."""
    rows = funnel(
        db,
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
        receipt_acknowledges=receipt_acknowledges,
    )
    [row] = [r for r in rows if r.register == ANY_REGISTER]
    return row.acknowledged, row.ack_median_s


async def test_the_worker_s_receipt_is_recorded_once(backend: Database) -> None:
    first, second = enqueue(backend, 2, NOW)
    clock = FixedClock(NOW + timedelta(minutes=5))
    held = {c.referral_id: c for c in outbox.claim(backend, "w", 10, timedelta(minutes=1), clock)}
    outbox.mark_delivered(backend, held[first], clock, remote_ref="ACK1", remote_status="received")
    outbox.mark_delivered_many(
        backend,
        [
            outbox.Delivered(held[second], "Task/2", "requested"),
            outbox.Delivered(held[first], "ACK1", "received"),  # a repeat changes nothing
        ],
        clock,
    )
    assert history(backend, first) == [("received", clock.now())]
    assert history(backend, second) == [("requested", clock.now())]
    assert task_status(backend, first) == "received"


async def test_a_receipt_without_a_status_records_nothing(backend: Database) -> None:
    [referral_id] = enqueue(backend, 1, NOW)
    clock = FixedClock(NOW)
    [held] = outbox.claim(backend, "w", 10, timedelta(minutes=1), clock)
    outbox.mark_delivered(backend, held, clock, remote_ref=None, remote_status=None)
    assert history(backend, referral_id) == []
    assert task_status(backend, referral_id) is None


async def test_a_direct_send_s_receipt_is_recorded_once_and_can_acknowledge(
    backend: Database, mllp: MllpReceiver
) -> None:
    [referral_id] = enqueue(backend, 1, NOW)
    clock = FixedClock(NOW)
    await forward_referral(backend, None, referral_id, hl7v2_service(mllp.port), clock)
    await forward_referral(backend, None, referral_id, hl7v2_service(mllp.port), clock)
    assert list(mllp.referrals) == [referral_id]
    assert history(backend, referral_id) == [("received", NOW)]
    # The ACK is the receiving system's receipt: an acknowledgement only where the
    # service says so (receipt_is_acknowledgement), as the closed loop's deadline counts.
    assert all_registers(backend) == (0, None)
    assert all_registers(backend, receipt_acknowledges={SERVICE_ID}) == (1, 0)
    assert all_registers(backend, receipt_acknowledges={"another"}) == (0, None)


async def test_refresh_status_records_the_housing_task_s_move_once(
    backend: Database, mock_fhir_factory: MockFhirFactory
) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    service = FhirHousingService(id=SERVICE_ID, name="Housing", fhir_base_url=housing.base_url)
    [referral_id] = enqueue(backend, 1, NOW)
    later = NOW + timedelta(hours=26)
    async with FhirClient(housing.base_url) as client:
        sent = await forward_referral(backend, client, referral_id, service, FixedClock(NOW))
        assert sent.remote_task_url is not None
        task = await client.read("Task", sent.remote_task_url.split("/")[1])
        await client.update({**task, "status": "accepted"})
        assert await refresh_status(backend, client, referral_id, FixedClock(later)) == "accepted"
        assert await refresh_status(backend, client, referral_id, FixedClock(later)) == "accepted"
    assert history(backend, referral_id) == [("requested", NOW), ("accepted", later)]
    assert all_registers(backend) == (1, 26 * 3600)


async def test_the_closed_loop_records_a_move_once_and_words_alone_not_at_all(
    backend: Database,
) -> None:
    service = FhirHousingService(id=SERVICE_ID, name="Housing", fhir_base_url="http://x/fhir")
    [referral_id] = enqueue(backend, 1, NOW)
    clock = FixedClock(NOW)
    [held] = outbox.claim(backend, "w", 10, timedelta(minutes=1), clock)
    outbox.mark_delivered(backend, held, clock, remote_ref="Task/1", remote_status="requested")
    later = FixedClock(NOW + timedelta(hours=3))
    moved = await record_status(backend, referral_id, "rejected", service=service, clock=later)
    again = await record_status(backend, referral_id, "rejected", service=service, clock=later)
    words = await record_status(
        backend, referral_id, "rejected", service=service, clock=later, reason="No capacity"
    )
    assert moved is not None and again is None and words is None
    assert history(backend, referral_id) == [("requested", NOW), ("rejected", later.now())]
    assert all_registers(backend) == (1, 3 * 3600)
