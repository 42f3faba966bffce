"""A claim on PostgreSQL takes at most its limit, and concurrent claims never share an entry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector.delivery import outbox
from healthy_homes.store.db import Database
from tests.delivery.seed import enqueue

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_postgres_claim_takes_only_its_limit_and_claims_are_disjoint(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.upgrade()
    enqueue(db, 300, NOW)
    clock = FixedClock(NOW + timedelta(seconds=1))
    lease = timedelta(seconds=30)
    assert len(outbox.claim(db, "first", 4, lease, clock)) == 4
    with ThreadPoolExecutor(6) as pool:
        claims = list(pool.map(lambda n: outbox.claim(db, f"w{n}", 10, lease, clock), range(30)))
    ids = [c.id for batch in claims for c in batch]
    assert all(len(batch) <= 10 for batch in claims)
    assert len(ids) == len(set(ids)) == 296  # every remaining entry, each claimed once
    db.dispose()
