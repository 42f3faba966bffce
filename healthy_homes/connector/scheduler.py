"""Scheduled running with APScheduler 3 (AsyncIOScheduler), and ``serve`` until a signal.

Per practice: incremental sync every few minutes (first at once), appointment watch
every minute, full reconciliation nightly. Referral delivery runs every
``[delivery] interval_seconds``, the closed loop (status back, acknowledgement
deadlines) every ``poll_minutes`` and the retry of undelivered recalls (consent
withdrawn) every few minutes, when housing services are configured. Data past its
retention period is purged nightly (``[retention]``, ``retention/schedule.py``).
``max_instances=1`` and ``coalesce`` stop a slow run from piling up; the practice
lock in :class:`ConnectorService` stops different jobs of one practice from
overlapping. (Several processes need database leases for sync, which come later;
delivery already claims outbox entries under a lease.)
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from healthy_homes.connector.closed_loop import ClosedLoop, add_loop_job, add_recall_job
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.connector.service import ConnectorService
from healthy_homes.ops.shutdown import release_leases
from healthy_homes.retention.schedule import add_purge_job

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 30.0
#: After the grace period, how long a cancelled job may take to unwind.
CANCEL_WAIT = 1.0


def job_options() -> dict[str, Any]:
    """What every job shares: one instance at a time, missed runs merged into one."""
    return {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}


def add_delivery_job(
    scheduler: AsyncIOScheduler, worker: DeliveryWorker, service: ConnectorService | None = None
) -> None:
    """Deliver the referral outbox every ``interval_seconds`` (first at once).

    Each run drains what is due; the outbox lease, not this job, keeps several
    connector processes from sending the same referral at once. With ``service``
    each run counts as work in progress, so a shutdown waits for its sends.
    """
    scheduler.add_job(
        worker.run_once if service is None else partial(service.tracked, worker.run_once),
        IntervalTrigger(seconds=worker.config.interval_seconds),
        id="referrals:deliver",
        name="referral delivery",
        next_run_time=worker.clock.now(),
        **job_options(),
    )


def build_scheduler(
    service: ConnectorService,
    delivery: DeliveryWorker | None = None,
    loop: ClosedLoop | None = None,
) -> AsyncIOScheduler:
    """A scheduler with the three jobs of every practice, delivery, the loop and recalls."""
    sync = service.settings.sync
    zone = sync.zone
    scheduler = AsyncIOScheduler(timezone=zone)
    now = service.clock.now()
    for ods in service.locks:
        scheduler.add_job(
            service.run,
            IntervalTrigger(minutes=sync.incremental_minutes, timezone=zone),
            args=[ods, "auto"],
            id=f"{ods}:incremental",
            name=f"incremental sync {ods}",
            next_run_time=now,
            **job_options(),
        )
        scheduler.add_job(
            service.run,
            IntervalTrigger(seconds=sync.appointment_seconds, timezone=zone),
            args=[ods, "appointments"],
            id=f"{ods}:appointments",
            name=f"appointment watch {ods}",
            next_run_time=now + timedelta(seconds=min(30.0, sync.appointment_seconds)),
            **job_options(),
        )
        scheduler.add_job(
            service.run,
            CronTrigger(
                hour=sync.reconcile_at.hour, minute=sync.reconcile_at.minute, timezone=zone
            ),
            args=[ods, "full"],
            id=f"{ods}:reconcile",
            name=f"full reconciliation {ods}",
            **job_options(),
        )
    if delivery is not None:
        add_delivery_job(scheduler, delivery, service)
    if loop is not None:
        add_loop_job(scheduler, loop)
        add_recall_job(scheduler, loop)
    retention = service.settings.retention
    add_purge_job(scheduler, service.db, retention, service.clock, zone, job_options())
    return scheduler


async def drain(service: ConnectorService, grace: float = SHUTDOWN_GRACE) -> int:
    """Let runs in progress finish for up to ``grace`` seconds, then cancel them."""
    running = set(service.active)
    if not running:
        return 0
    log.info("waiting for %d practice run(s) to finish", len(running))
    _, pending = await asyncio.wait(running, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        # A job still waiting on its own work (a delivery run on its sends) is cut short too.
        _, stuck = await asyncio.wait(pending, timeout=CANCEL_WAIT)
        for task in stuck:
            task.cancel()
    return len(pending)


async def serve(
    service: ConnectorService, stop: asyncio.Event, *, grace: float = SHUTDOWN_GRACE
) -> None:
    """Run the scheduled jobs until ``stop`` is set, then shut down gracefully."""
    settings = service.settings
    delivery = (
        DeliveryWorker(
            service.db, settings.housing_services, settings.delivery, clock=service.clock
        )
        if settings.housing_services
        else None
    )
    loop = (
        ClosedLoop(
            service.db,
            settings.housing_services,
            {ods: ctx.client for ods, ctx in service.contexts.items()},
            service.clock,
        )
        if settings.housing_services
        else None
    )
    scheduler = build_scheduler(service, delivery, loop)
    scheduler.start()
    service.scheduler = scheduler
    log.info("connector serving %d practice(s)", len(service.contexts))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)  # no new runs from here on
        if delivery is not None:
            delivery.closing = True  # sends in flight finish; nothing more is claimed
        cancelled = await drain(service, grace)
        if delivery is not None:
            # Sends cut short go back to the outbox now rather than when their leases expire.
            released = release_leases(service.db, delivery.owner, service.clock)
            if released:
                log.info("released %d unfinished delivery lease(s)", released)
            await delivery.aclose()
        if loop is not None:
            await loop.aclose()
        log.info("connector stopped (%d run(s) cut short)", cancelled)
