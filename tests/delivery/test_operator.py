"""Operators: the CLI and the outbox page retry or cancel dead-lettered referrals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from healthy_homes.accounts.users import add_user
from healthy_homes.cli import main
from healthy_homes.clock import FixedClock
from healthy_homes.connector.delivery import outbox
from healthy_homes.connector.delivery.outbox import Claim
from healthy_homes.connector.delivery.pages import create_outbox_app
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.connector.scheduler import add_delivery_job
from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral, ReferralStatus
from healthy_homes.web.access import Role
from tests.delivery.helpers import alerts, states
from tests.delivery.seed import enqueue, fast_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SECRET = b"s" * 32


def _dead(db: Database, clock: FixedClock, count: int) -> list[str]:
    """Referrals moved to the dead letters the way the worker does it."""
    ids = enqueue(db, count, clock.now())
    for held in outbox.claim(db, "w", count, timedelta(minutes=1), clock):
        assert outbox.mark_dead(db, held, clock, "housing service housing answered 400")
    return ids


def test_a_dead_letter_alerts_once_even_if_marked_twice(db: Database) -> None:
    clock = FixedClock(NOW)
    [referral] = _dead(db, clock, 1)
    stale = Claim(1, referral, "housing", 1, "w")  # a second worker's late bookkeeping
    assert not outbox.mark_dead(db, stale, clock, "again")
    assert [a.subject for a in alerts(db)] == [referral]


def test_cli_lists_shows_retries_and_cancels(db: Database, fast_dir, capsys) -> None:
    clock = FixedClock(NOW)
    ids = _dead(db, clock, 3)
    config = fast_dir / "c.toml"
    config.write_text(f'[storage]\nurl = "{db.url}"\n')
    base = ["referrals"]
    assert main([*base, "list", "--state", "dead", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert all(i in listed for i in ids) and "Test" not in listed  # ids, never names
    assert main([*base, "show", ids[0], "--config", str(config)]) == 0
    assert "answered 400" in capsys.readouterr().out
    assert main([*base, "retry", ids[0], "--config", str(config)]) == 0
    assert main([*base, "cancel", ids[1], "--reason", "duplicate", "--config", str(config)]) == 0
    assert states(db) == {"pending": 1, "cancelled": 1, "dead": 1}
    with db.session() as session:
        cancelled = session.get(Referral, ids[1])
        assert cancelled is not None and cancelled.status == ReferralStatus.CANCELLED
    assert main([*base, "retry", "--all-dead", "--config", str(config)]) == 0
    assert states(db) == {"pending": 2, "cancelled": 1}


async def test_outbox_page_retries_and_cancels_with_csrf(db: Database) -> None:
    clock = FixedClock(NOW)
    ids = _dead(db, clock, 2)
    with db.session() as session:
        practice = session.get(Referral, ids[0])
        assert practice is not None
        add_user(
            session,
            username="ops1",
            display_name="Olive Operator",
            role=Role.PRACTICE_ADMIN,
            organisation=practice.practice_ods,
            password="correct horse battery staple",
            now=NOW,
        )
    app = create_outbox_app(db, clock, csrf_secret=SECRET)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        form = await client.get("/sign-in")
        found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert found is not None
        fields = {"username": "ops1", "password": "correct horse battery staple"}
        signed = await client.post("/sign-in", data={**fields, "csrf_token": found.group(1)})
        assert signed.status_code == 303
        page = await client.get("/referrals/outbox")
        assert page.status_code == 200
        assert all(i in page.text for i in ids) and "Test0" not in page.text
        match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert match is not None
        refused = await client.post(f"/referrals/outbox/{ids[0]}/retry")
        assert refused.status_code == 403 and states(db) == {"dead": 2}
        headers = {"X-CSRF-Token": match.group(1)}
        done = await client.post(f"/referrals/outbox/{ids[0]}/retry", headers=headers)
        assert done.status_code == 303
        cancel = await client.post(
            f"/referrals/outbox/{ids[1]}/cancel", data={"reason": "moved away"}, headers=headers
        )
        assert cancel.status_code == 303
        again = await client.post(
            f"/referrals/outbox/{ids[1]}/retry", headers=headers
        )  # cancelled stays cancelled
        assert again.status_code == 409
    assert states(db) == {"pending": 1, "cancelled": 1}
    with db.session() as session:
        row = session.get(Referral, ids[1])
        assert row is not None and "Olive Operator" in (row.cancel_reason or "")


def test_connector_scheduler_runs_delivery(db: Database) -> None:
    scheduler = AsyncIOScheduler()
    worker = DeliveryWorker(db, [], fast_config(interval_seconds=7), clock=FixedClock(NOW))
    add_delivery_job(scheduler, worker)
    job = scheduler.get_job("referrals:deliver")
    assert job is not None and job.trigger.interval == timedelta(seconds=7)
