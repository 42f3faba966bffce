"""The nightly purge on the connector's APScheduler schedule."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from healthy_homes.clock import Clock
from healthy_homes.config.retention import RetentionConfig
from healthy_homes.retention.purge import PurgeReport, purge
from healthy_homes.store.db import Database

log = logging.getLogger(__name__)
JOB_ID = "retention:purge"


async def purge_job(db: Database, config: RetentionConfig, clock: Clock) -> PurgeReport:
    """One purge, off the event loop (it is database work and VACUUM)."""
    report = await asyncio.to_thread(purge, db, config, clock)
    log.info("retention purge removed %d row(s)", report.total)
    return report


def add_purge_job(
    scheduler: AsyncIOScheduler,
    db: Database,
    config: RetentionConfig,
    clock: Clock,
    zone: ZoneInfo,
    options: dict[str, Any],
) -> None:
    """Purge nightly at ``[retention] run_at`` local time, when ``nightly`` is on."""
    if not config.nightly:
        return
    scheduler.add_job(
        purge_job,
        CronTrigger(hour=config.run_at.hour, minute=config.run_at.minute, timezone=zone),
        args=[db, config, clock],
        id=JOB_ID,
        name="retention purge",
        **options,
    )
