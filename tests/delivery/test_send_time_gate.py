"""Consent is checked at the moment of sending, not only when the referral was queued.

A withdrawal normally cancels the queued referral itself; these tests take that away
(the consent row changes under a referral still waiting in the outbox, as when the
withdrawal lands in another process between claim and send) so that only the gate in
the sending path stands between the patient's data and the housing service.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.connector.delivery.alerts import raise_alert
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.referrals.transports.base import Transport
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, ConsentRecord, Referral
from tests.delivery.helpers import alerts, received
from tests.delivery.seed import enqueue, fast_config, service

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _worker(db: Database, url: str, clock: FixedClock) -> DeliveryWorker:
    def transport(svc: HousingServiceConfig) -> Transport:
        policy = RetryPolicy(max_attempts=1, breaker_threshold=10_000)
        return FhirRestTransport(FhirClient(url, clock=clock, policy=policy))

    return DeliveryWorker(
        db, [service(url)], fast_config(), clock=clock, rng=random.Random(1), transports=transport
    )


def _consent_of(db: Database, referral_id: str) -> str:
    with db.session() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        return referral.consent_id


async def test_consent_changed_under_a_queued_referral_stops_it_at_send(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    ids = enqueue(db, 3, NOW)
    withdrawn, declined = _consent_of(db, ids[0]), _consent_of(db, ids[1])
    with db.session() as session:
        first = session.get(ConsentRecord, withdrawn)
        second = session.get(ConsentRecord, declined)
        assert first is not None and second is not None
        first.withdrawn_at = NOW + timedelta(seconds=1)
        second.decision = ConsentDecision.DECLINED
        session.add_all([first, second])
        session.commit()
    worker = _worker(db, housing.base_url, clock)
    try:
        stats = await worker.run_once()
    finally:
        await worker.aclose()
    got = received(housing)
    assert ids[0] not in got and ids[1] not in got
    assert got[ids[2]] == 1
    assert stats.delivered == 1


def test_the_same_alert_episode_raised_twice_is_one_alert(db) -> None:
    for _ in range(3):  # two workers, or a retried transaction, raising the same episode
        with db.session() as session:
            raise_alert(
                session,
                kind="referral-dead-letter",
                subject="ref-1",
                episode=1,
                practice="A12345",
                message="not delivered",
                now=NOW,
            )
            session.commit()
    with db.session() as session:
        raise_alert(
            session,
            kind="referral-dead-letter",
            subject="ref-1",
            episode=2,
            practice="A12345",
            message="not delivered again after a retry",
            now=NOW,
        )
        session.commit()
    assert sorted(a.key for a in alerts(db)) == [
        "referral-dead-letter:ref-1:1",
        "referral-dead-letter:ref-1:2",
    ]
