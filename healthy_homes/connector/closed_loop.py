"""The closed loop on a schedule: status back from housing services, and overdue alerts.

Polls every sent, unfinished referral through its own transport, records changes on the
referral and in a Task mirror in the practice record (so the referring clinician sees
them), then raises one alert for each referral past its acknowledgement deadline.

Recalls (consent withdrawn) that could not be delivered when the clinician withdrew
are sent again every ``recall_minutes`` through the same transports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.consent.withdrawal import Recaller, retry_recalls
from healthy_homes.fhir.client import FhirClient
from healthy_homes.referrals.loop import StatusChange, TaskMirror, check_overdue, poll_statuses
from healthy_homes.referrals.transports.base import Transport, transport_for
from healthy_homes.store.db import Database
from healthy_homes.store.models import Alert

log = logging.getLogger(__name__)

DEFAULT_POLL_MINUTES = 15.0
#: A withdrawn consent's recall should not wait for the next status poll.
DEFAULT_RECALL_MINUTES = 5.0


@dataclass
class LoopReport:
    """What one pass of the loop found."""

    changes: list[StatusChange] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class ClosedLoop:
    """Status polling and acknowledgement deadlines for every configured housing service."""

    def __init__(
        self,
        db: Database,
        services: Sequence[HousingServiceConfig],
        practice_clients: Mapping[str, FhirClient],
        clock: Clock,
        *,
        http: httpx.AsyncBaseTransport | None = None,
        recall_minutes: float = DEFAULT_RECALL_MINUTES,
    ) -> None:
        self.db = db
        self.clock = clock
        self.services = list(services)
        self.transports: dict[str, Transport] = {
            s.id: transport_for(s, clock=clock, http=http) for s in self.services
        }
        self.mirror = TaskMirror(practice_clients, clock)
        self.recall_minutes = recall_minutes
        self.recaller = Recaller(self.services, clock=clock, transports=self.transports)

    @property
    def poll_minutes(self) -> float:
        """The shortest poll interval any service asks for."""
        asked = [float(getattr(s, "poll_minutes", DEFAULT_POLL_MINUTES)) for s in self.services]
        return min(asked, default=DEFAULT_POLL_MINUTES)

    async def run_once(self) -> LoopReport:
        """Poll statuses, write them back, then check acknowledgement deadlines."""
        by_id = {s.id: s for s in self.services}
        changes = await poll_statuses(
            self.db, by_id, self.transports, clock=self.clock, mirror=self.mirror
        )
        alerts = await check_overdue(self.db, self.services, clock=self.clock, mirror=self.mirror)
        if changes or alerts:
            log.info("closed loop: %d status change(s), %d alert(s)", len(changes), len(alerts))
        return LoopReport(changes, alerts)

    async def recall_pending(self) -> list[str]:
        """Send again every recall of a withdrawn consent not yet delivered."""
        recalled = await retry_recalls(self.db, self.recaller, self.clock)
        if recalled:
            log.info("closed loop: %d recall(s) delivered", len(recalled))
        return recalled

    async def aclose(self) -> None:
        """Close every transport's connections."""
        await self.recaller.aclose()
        for transport in self.transports.values():
            await transport.aclose()


def add_loop_job(scheduler: AsyncIOScheduler, loop: ClosedLoop) -> None:
    """Run the closed loop every ``poll_minutes`` (one instance at a time)."""
    scheduler.add_job(
        loop.run_once,
        IntervalTrigger(minutes=loop.poll_minutes),
        id="referrals:loop",
        name="referral status and acknowledgement deadlines",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=300,
    )


def add_recall_job(scheduler: AsyncIOScheduler, loop: ClosedLoop) -> None:
    """Retry undelivered recalls every ``recall_minutes`` (first at once, one at a time)."""
    scheduler.add_job(
        loop.recall_pending,
        IntervalTrigger(minutes=loop.recall_minutes),
        id="referrals:recall",
        name="recalls of withdrawn consents",
        next_run_time=loop.clock.now(),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=300,
    )
