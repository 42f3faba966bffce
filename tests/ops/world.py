"""A small deployment that has done real work: a sync, flags acted on, referrals delivered.

Shared by the metrics and status tests: one practice synced from a mock FHIR server
on loopback (flags raised), one whose endpoint refuses connections (a failed run),
one never synced; a clinician's actions on flags; referrals delivered to a mock
housing server, one dead-lettered with its alert, two still waiting.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select

from healthy_homes.clock import Clock
from healthy_homes.config.models import Settings
from healthy_homes.connector.delivery import outbox
from healthy_homes.connector.delivery.worker import DeliveryStats, DeliveryWorker
from healthy_homes.connector.service import ConnectorService
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.flags.events import EventKind, Source, add_event
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord
from tests.connector.helpers import no_sleep
from tests.delivery.seed import enqueue, fast_config, service
from tests.ops.conftest import refused_url

SYNCED, DOWN, NEVER = "M00001", "M00002", "M00003"


@dataclass
class World:
    """What was done, to compare the figures against."""

    flags_raised: int
    delivered: int
    dead: int
    waiting: int
    oldest_waiting: datetime


def settings_for(db: Database, practice: RunningMockServer, housing: RunningMockServer) -> Settings:
    """Three practices and one housing service over ``db``."""
    return Settings.model_validate(
        {
            "storage": {"url": db.url},
            "practices": [
                {"ods_code": SYNCED, "name": "Synced Surgery", "fhir_base_url": practice.base_url},
                {"ods_code": DOWN, "name": "Down Surgery", "fhir_base_url": refused_url()},
                {"ods_code": NEVER, "name": "New Surgery", "fhir_base_url": practice.base_url},
            ],
            "housing_services": [service(housing.base_url).model_dump(mode="json")],
            "ops": {"metrics_token": "scrape-me"},
        }
    )


def build(settings: Settings, db: Database, clock: Clock) -> World:
    """Sync two practices, act on flags, deliver referrals; return the tally."""

    async def work() -> int:
        async with ConnectorService(
            settings, db, clock, sleep=no_sleep, policy=RetryPolicy(max_attempts=2)
        ) as connector:
            report = await connector.run_all("auto", [SYNCED, DOWN])
        runs = {run.practice: run for run in report.practices}
        assert runs[SYNCED].error is None and runs[DOWN].error
        assert runs[SYNCED].flags is not None
        return len(runs[SYNCED].flags.raised)

    raised = asyncio.run(work())
    now = clock.now()
    with db.session() as session:
        flags = list(session.exec(select(FlagRecord).where(FlagRecord.practice_ods == SYNCED)))
        assert len(flags) >= 2
        for flag in flags[:2]:
            add_event(session, flag, EventKind.SHOWN, now, source=Source.CDS_HOOKS)
        add_event(session, flags[0], EventKind.ACCEPTED, now, actor="Dr A", source=Source.WEB)
        add_event(session, flags[1], EventKind.DISMISSED, now, actor="Dr A", source=Source.WEB)

    enqueue(db, 3, now)

    async def deliver() -> DeliveryStats:
        worker = DeliveryWorker(db, settings.housing_services, fast_config(), clock=clock)
        try:
            return await worker.run_once()
        finally:
            await worker.aclose()

    stats = asyncio.run(deliver())
    assert stats.delivered == 3
    # One more that goes dead (an operator's matter: alert raised), two still waiting.
    enqueue(db, 1, now, start=3)
    (held,) = outbox.claim(db, "ops-test", 1, timedelta(seconds=30), clock)
    assert outbox.mark_dead(db, held, clock, "housing service refused it (400)")
    oldest = now - timedelta(minutes=10)
    enqueue(db, 1, oldest, start=4)
    enqueue(db, 1, now - timedelta(minutes=2), start=5)
    return World(flags_raised=raised, delivered=3, dead=1, waiting=2, oldest_waiting=oldest)
