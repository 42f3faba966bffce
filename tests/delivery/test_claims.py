"""Claims: disjoint between workers, taken over when a lease expires (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector.delivery import outbox
from healthy_homes.store.db import Database
from tests.delivery.helpers import states
from tests.delivery.seed import enqueue

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _claims_are_disjoint_and_expire(db: Database) -> None:
    clock = FixedClock(NOW)
    enqueue(db, 300, NOW)
    taken: dict[str, list[str]] = {"a": [], "b": [], "c": []}

    def claimer(owner: str) -> None:
        while held := outbox.claim(db, owner, 7, LEASE, clock):
            taken[owner].extend(h.referral_id for h in held)

    threads = [threading.Thread(target=claimer, args=(owner,)) for owner in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [r for claimed in taken.values() for r in claimed]
    assert len(everything) == len(set(everything)) == 300  # each claimed by one worker only
    assert states(db) == {"in_flight": 300}
    assert outbox.claim(db, "d", 500, LEASE, clock) == []  # leases still hold
    clock.advance(LEASE + timedelta(seconds=1))  # the three "died": their leases lapse
    again = outbox.claim(db, "d", 500, LEASE, clock)
    assert len(again) == 300 and {h.attempts for h in again} == {2}
    stale = next(h for h in again if h.referral_id in taken["a"])
    late = outbox.Claim(stale.id, stale.referral_id, stale.housing_service_id, 1, "a")
    assert not outbox.schedule_retry(db, late, clock, 5.0, "late")  # lost lease: no effect


def test_sqlite_claims(db: Database) -> None:
    _claims_are_disjoint_and_expire(db)


@pytest.mark.postgres
def test_postgres_claims_skip_locked_rows(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.upgrade()
    try:
        _claims_are_disjoint_and_expire(db)
    finally:
        db.dispose()
