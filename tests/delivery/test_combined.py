"""Several referrals in one transaction (``referrals_per_request``) against the mock server.

Each referral keeps its own conditional creates, so combining changes how many
requests go out, not what arrives: every referral exactly once, each receipt naming
that referral's own Task, and a referral the receiver refuses failing alone.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.fhir.systems import HH_REFERRAL_ID, NHS_NUMBER
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.referrals.transports.base import Transport
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral
from tests.delivery.helpers import alerts, received, states
from tests.delivery.seed import enqueue, fast_config, nhs_number, service

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
ONE_TRY = RetryPolicy(max_attempts=1, breaker_threshold=10_000)


class Posts(httpx.AsyncBaseTransport):
    """Real HTTP, counting the transactions posted and the entries in each."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.entries: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = httpx.Response(200, content=await request.aread()).json()
            self.entries.append(len(body.get("entry") or []))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _worker(
    db: Database, housing: RunningMockServer, posts: Posts, per_request: int, **config: object
) -> tuple[DeliveryWorker, list[FhirRestTransport]]:
    made: list[FhirRestTransport] = []

    def transport(svc: HousingServiceConfig) -> Transport:
        client = FhirClient(housing.base_url, transport=posts, policy=ONE_TRY)
        made.append(FhirRestTransport(client, per_request=per_request))
        return made[-1]

    worker = DeliveryWorker(
        db,
        [service(housing.base_url)],
        fast_config(**config),
        clock=FixedClock(NOW),
        rng=random.Random(1),
        transports=transport,
    )
    return worker, made


def _task_referral(housing: RunningMockServer, task_ref: str) -> str | None:
    """Our referral identifier on the receiver's Task ``Task/{id}``."""
    task = housing.store.read("Task", task_ref.split("/", 1)[1]).resource()
    for identifier in task.get("identifier") or []:
        if identifier.get("system") == HH_REFERRAL_ID:
            return str(identifier["value"])
    return None


async def test_referrals_go_ten_to_a_transaction_and_each_receipt_names_its_own_task(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    ids = enqueue(db, 25, NOW)
    posts = Posts()
    worker, _ = _worker(db, housing, posts, per_request=10, concurrency=4)
    try:
        stats = await worker.run_once()
        again = await worker.run_once()
    finally:
        await worker.aclose()

    assert stats.delivered == 25 and again.handled == 0
    assert received(housing) == {i: 1 for i in ids}
    # Ten referrals a transaction (four entries each): 10, 10 and 5.
    assert sorted(posts.entries) == [20, 40, 40]
    with db.session() as session:
        for referral_id in ids:
            row = session.get(Referral, referral_id)
            assert row is not None and row.remote_task_url
            assert _task_referral(housing, row.remote_task_url) == referral_id


async def test_a_referral_the_receiver_refuses_fails_alone_and_the_rest_of_its_group_arrive(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    ids = enqueue(db, 10, NOW)
    # The receiver already holds two Patients with referral 3's NHS number: its
    # conditional create matches both (412), which refuses any transaction carrying it.
    for copy in range(2):
        housing.store.create(
            {
                "resourceType": "Patient",
                "identifier": [{"system": NHS_NUMBER, "value": nhs_number(3)}],
                "name": [{"family": f"Existing{copy}"}],
            }
        )
    posts = Posts()
    worker, made = _worker(db, housing, posts, per_request=10, max_attempts=1)
    try:
        stats = await worker.run_once()
    finally:
        await worker.aclose()

    assert stats.delivered == 9 and stats.dead == 1
    assert set(received(housing)) == set(ids) - {ids[3]}
    assert states(db) == {"delivered": 9, "dead": 1}
    [alert] = alerts(db)
    assert alert.subject == ids[3]
    # One combined try, then each alone; the receiver does take several, so it stays at 10.
    assert posts.entries == [40] + [4] * 10
    assert made[0].per_request == 10


async def test_a_lost_answer_resends_the_group_and_nothing_arrives_twice(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    ids = enqueue(db, 10, NOW)
    posts = Posts()
    worker, _ = _worker(db, housing, posts, per_request=10)
    clock = worker.clock
    assert isinstance(clock, FixedClock)
    # The transaction is applied, then the connection is reset before the answer.
    admin = httpx.AsyncClient(base_url=housing.url)
    try:
        faults = {"rules": ["*:reset,after,method=POST"]}
        (await admin.put("/admin/faults", json=faults)).raise_for_status()
        first = await worker.run_once()
        (await admin.delete("/admin/faults")).raise_for_status()
        clock.advance(timedelta(minutes=5))
        second = await worker.run_once()
    finally:
        await admin.aclose()
        await worker.aclose()

    assert first.retried == 10 and first.delivered == 0
    assert second.delivered == 10
    assert received(housing) == {i: 1 for i in ids}
    patients = [housing.store.record(seq) for seq in housing.store.type_seqs("Patient")]
    assert len({p.id for p in patients}) == 10


async def test_two_referrals_for_one_patient_never_share_a_transaction(
    db, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    ids = enqueue(db, 4, NOW)
    with db.session() as session:  # referral 1 is for the same patient as referral 0
        first, second = session.get(Referral, ids[0]), session.get(Referral, ids[1])
        assert first is not None and second is not None
        second.dataset = dict(first.dataset)
        session.add(second)
    posts = Posts()
    worker, _ = _worker(db, housing, posts, per_request=10)
    try:
        stats = await worker.run_once()
    finally:
        await worker.aclose()

    assert stats.delivered == 4
    assert received(housing) == {i: 1 for i in ids}
    assert sorted(posts.entries) == [4, 12]
    patients = [housing.store.record(seq) for seq in housing.store.type_seqs("Patient")]
    assert len({p.id for p in patients}) == 3  # one Patient for the patient referred twice
