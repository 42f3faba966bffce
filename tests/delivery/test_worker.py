"""The delivery worker against a real mock housing server: retries, dead letters, consent.

The clock is a FixedClock moved by hand; backoff waits are read from the outbox,
never slept.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import httpx

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.connector.delivery import outbox
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.consent.service import withdraw
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.mock_server.server import build_server
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.referrals.transports.base import Transport
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, Referral, ReferralStatus
from tests.delivery.helpers import alerts, received, states
from tests.delivery.seed import enqueue, fast_config, service

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


#: One try per attempt (the worker owns retries), no breaker: every attempt reaches the wire.
ONE_TRY = RetryPolicy(max_attempts=1, breaker_threshold=10_000)


def _worker(db: Database, url: str, clock: FixedClock, **config: object) -> DeliveryWorker:
    def transport(svc: HousingServiceConfig) -> Transport:
        return FhirRestTransport(FhirClient(url, clock=clock, policy=ONE_TRY))

    return DeliveryWorker(
        db,
        [service(url)],
        fast_config(**config),
        clock=clock,
        rng=random.Random(1),
        transports=transport,
    )


async def test_delivers_each_referral_once_and_records_the_receipt(db, mock_fhir_factory) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    ids = enqueue(db, 30, NOW)
    worker = _worker(db, housing.base_url, clock)
    try:
        stats = await worker.run_once()
        again = await worker.run_once()
    finally:
        await worker.aclose()
    assert stats.delivered == 30 and again.handled == 0
    assert received(housing) == {i: 1 for i in ids}
    assert states(db) == {"delivered": 30}
    with db.session() as session:
        row = session.get(Referral, ids[0])
        assert row is not None and row.status == ReferralStatus.SENT
        assert row.remote_task_url and row.remote_task_url.startswith("Task/")


async def test_consent_withdrawn_after_enqueue_is_never_sent(db, mock_fhir_factory) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    ids = enqueue(db, 3, NOW)
    with db.session() as session:
        consent_id = session.get(Referral, ids[1]).consent_id  # type: ignore[union-attr]
    clock.advance(timedelta(minutes=1))
    withdraw(db, consent_id, clock)
    worker = _worker(db, housing.base_url, clock)
    try:
        stats = await worker.run_once()
    finally:
        await worker.aclose()
    assert stats.delivered == 2 and stats.cancelled == 1
    assert ids[1] not in received(housing)
    assert states(db) == {"delivered": 2, "cancelled": 1}
    with db.session() as session:
        assert session.get(Referral, ids[1]).status != ReferralStatus.SENT  # type: ignore[union-attr]


async def test_receiver_down_then_back_retries_with_backoff_and_one_alert_per_dead_letter(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    first = enqueue(db, 10, NOW)
    worker = _worker(db, housing.base_url, clock, max_attempts=3)
    # Down: every request answers 503. The first batch uses up its three attempts.
    admin = httpx.AsyncClient(base_url=housing.url)
    (await admin.put("/admin/faults", json={"rules": ["*:status=503"]})).raise_for_status()
    try:
        for _ in range(3):
            stats = await worker.run_once()
            assert stats.delivered == 0
            clock.advance(timedelta(seconds=60))  # past the capped backoff (30 s)
        assert states(db) == {"dead": 10}
        # Dead entries are not retried by the worker, and no second alert comes.
        assert (await worker.run_once()).handled == 0
        assert sorted(a.subject for a in alerts(db)) == sorted(first)
        # The receiver's own words (its OperationOutcome) never reach our alerts.
        assert all(a.message.endswith("housing service answered HTTP 503") for a in alerts(db))
        # Referrals queued while it is down wait with backoff (nothing due before it).
        later = enqueue(db, 5, clock.now(), start=100)
        stats = await worker.run_once()
        assert stats.retried == 5
        with db.session() as session:
            due = [session.get(OutboxEntry, i) for i in range(11, 16)]
        assert all(e is not None and e.next_attempt_at > clock.now() for e in due)
        assert (await worker.run_once()).handled == 0
        # Back up: the waiting ones go at their next attempt; the operator retries the dead.
        (await admin.delete("/admin/faults")).raise_for_status()
        assert outbox.retry_dead(db, clock) == 10
        delivered = 0
        for _ in range(2):
            clock.advance(timedelta(seconds=31))
            delivered += (await worker.run_once()).delivered
        assert delivered == 15
    finally:
        await admin.aclose()
        await worker.aclose()
    assert received(housing) == {i: 1 for i in first + later}
    assert states(db) == {"delivered": 15}
    assert len(alerts(db)) == 10  # still one per dead-lettered referral


async def test_a_poison_referral_does_not_block_the_others(db, mock_fhir_factory) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    ids = enqueue(db, 6, NOW)
    with db.session() as session:  # a dataset that cannot be sent: dead at once, one alert
        poison = session.get(Referral, ids[2])
        assert poison is not None
        poison.dataset = {"nhs_number": "not-a-number"}
        session.add(poison)
    worker = _worker(db, housing.base_url, clock)
    try:
        stats = await worker.run_once()
    finally:
        await worker.aclose()
    assert stats.delivered == 5 and stats.dead == 1
    assert set(received(housing)) == set(ids) - {ids[2]}
    assert states(db) == {"delivered": 5, "dead": 1}
    [alert] = alerts(db)
    assert alert.subject == ids[2] and "not-a-number" not in alert.message


async def test_a_running_worker_picks_up_new_referrals_and_stops_on_request(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    worker = _worker(db, housing.base_url, clock, poll_seconds=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        ids = enqueue(db, 5, NOW)
        for _ in range(500):  # polls while the worker's own loop picks them up
            if states(db) == {"delivered": 5}:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        stats = await running
        await worker.aclose()
    assert stats.delivered == 5 and received(housing) == {i: 1 for i in ids}


async def test_a_direct_send_closes_the_outbox_entry(db, mock_fhir_factory) -> None:
    """'Consent and refer' sends at once (forward_referral); the worker then has nothing to do."""
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    [referral] = enqueue(db, 1, NOW)
    async with FhirClient(housing.base_url) as client:
        await forward_referral(db, client, referral, service(housing.base_url), clock)
    assert states(db) == {"delivered": 1}
    worker = _worker(db, housing.base_url, clock)
    try:
        assert (await worker.run_once()).handled == 0
    finally:
        await worker.aclose()
    assert received(housing) == {referral: 1}


async def test_receiver_stopped_then_started_again_gets_everything_once(db) -> None:
    """Connection refused while the server is down: retried with backoff, nothing lost."""
    clock = FixedClock(NOW)
    first = build_server(mode="housing").start()
    port = int(first.url.rsplit(":", 1)[1])
    first.stop()  # down: connections are refused
    ids = enqueue(db, 8, NOW)
    worker = _worker(db, first.base_url, clock, max_attempts=5)
    again = build_server(mode="housing", port=port)
    try:
        stats = await worker.run_once()
        assert stats.retried == 8 and stats.delivered == 0
        assert states(db) == {"pending": 8}
        again.start()  # back, on the same address
        clock.advance(timedelta(seconds=31))
        assert (await worker.run_once()).delivered == 8
    finally:
        await worker.aclose()
        again.stop()
    assert received(again) == {i: 1 for i in ids}
    assert alerts(db) == []  # nothing went dead, so nothing to alert
