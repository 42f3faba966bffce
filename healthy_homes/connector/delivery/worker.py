"""The delivery worker: claims due outbox entries and delivers them concurrently.

Up to ``concurrency`` deliveries run at once, each under ``send_timeout_seconds``
(shorter than the lease, so a claim never outlives its holder's interest). A
failure only moves its own entry (retry later or dead letter): one poison referral
never holds up the others. An entry is marked delivered only after the transport
returned; a crash in between leaves it to be sent again under the same referral id,
which the receiver de-duplicates (conditional create). A service whose transport
combines referrals (``referrals_per_request``) gets them a group per send, and each
referral in the group is still settled by its own outcome. Database round trips are
shared: consent is re-checked for a whole claimed batch in one transaction just
before its sends start, and the receipts that came back are recorded together.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from healthy_homes.clock import Clock
from healthy_homes.config.models import DeliveryConfig, HousingServiceConfig
from healthy_homes.connector.delivery import outbox
from healthy_homes.connector.delivery.outbox import Claim
from healthy_homes.connector.delivery.policy import (
    DeliveryPolicy,
    nothing_sent,
    retry_after_of,
    safe_error,
)
from healthy_homes.errors import ConsentRequiredError, HealthyHomesError, StorageError
from healthy_homes.referrals.forward import Prepared, envelopes_for
from healthy_homes.referrals.transports.base import (
    CombiningTransport,
    DeliveryReceipt,
    Outcome,
    ReferralEnvelope,
    Transport,
    transport_for,
)
from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral, ReferralStatus

log = logging.getLogger(__name__)

TransportFactory = Callable[[HousingServiceConfig], Transport]


@dataclass
class DeliveryStats:
    """What one run did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    lost_lease: int = 0

    @property
    def handled(self) -> int:
        """Entries this run finished with, one way or another."""
        return self.delivered + self.retried + self.dead + self.cancelled + self.lost_lease


def worker_id() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DeliveryWorker:
    """Delivers the outbox of one database to the configured housing services."""

    def __init__(
        self,
        db: Database,
        services: Iterable[HousingServiceConfig],
        config: DeliveryConfig,
        *,
        clock: Clock,
        owner: str | None = None,
        rng: random.Random | None = None,
        transports: TransportFactory | None = None,
    ) -> None:
        self.db = db
        self.services = {s.id: s for s in services}
        self.config = config
        self.clock = clock
        self.owner = owner or worker_id()
        self.policy = DeliveryPolicy(config, rng)
        self._make: TransportFactory = transports or (lambda s: transport_for(s, clock=clock))
        self._transports: dict[str, Transport] = {}
        # Receipts not yet recorded: written in one transaction per turn of the loop.
        self._delivered: list[outbox.Delivered] = []
        #: Set on shutdown: claim nothing more, finish what is in flight.
        self.closing = False

    def _transport(self, service: HousingServiceConfig) -> Transport:
        if service.id not in self._transports:
            self._transports[service.id] = self._make(service)
        return self._transports[service.id]

    async def aclose(self) -> None:
        """Close every transport opened."""
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()

    def claim(self, limit: int) -> list[Claim]:
        """Claim up to ``limit`` due entries under this worker's lease."""
        lease = timedelta(seconds=self.config.lease_seconds)
        return outbox.claim(self.db, self.owner, limit, lease, self.clock)

    async def run_once(self) -> DeliveryStats:
        """Deliver until nothing is due (retries scheduled for later stay for later)."""
        stats = DeliveryStats()
        await self._pump(stats, stop=None)
        return stats

    async def run(self, stop: asyncio.Event) -> DeliveryStats:
        """Deliver, looking for due entries every ``poll_seconds``, until ``stop`` is set."""
        stats = DeliveryStats()
        await self._pump(stats, stop=stop)
        return stats

    async def _pump(self, stats: DeliveryStats, stop: asyncio.Event | None) -> None:
        running: set[asyncio.Task[None]] = set()
        limit = self.config.concurrency
        try:
            while True:
                stopping = self.closing or (stop is not None and stop.is_set())
                free = limit - len(running)
                # Refill when half the slots are free, so claims come in batches.
                if not stopping and (not running or free >= max(1, limit // 2)):
                    # Receipts wait for the refill, so one transaction records several
                    # (a crash before it only means a resend the receiver de-duplicates).
                    self._record_delivered(stats)
                    wanted = min(free * self._per_task(), self.config.batch_size)
                    claims = self._claim_safely(wanted, stop)
                    for job in self._jobs(self._prepare(claims), stats):
                        running.add(asyncio.create_task(job))
                if not running:
                    self._record_delivered(stats)
                    if stop is None or stopping:
                        return
                    waiter = asyncio.create_task(stop.wait())
                    await asyncio.wait({waiter}, timeout=self.config.poll_seconds)
                    waiter.cancel()
                    continue
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        finally:
            if running:
                # Shutting down mid-send: let these finish (each is bounded by its timeout).
                await asyncio.wait(running)
            self._record_delivered(stats)

    def _combining(self, service: HousingServiceConfig | None) -> CombiningTransport | None:
        """The service's transport if it sends several referrals at once now."""
        if service is None:
            return None
        try:
            transport = self._transport(service)
        except Exception:  # the single send reports a transport that cannot be made
            return None
        if isinstance(transport, CombiningTransport) and transport.per_request > 1:
            return transport
        return None

    def _per_task(self) -> int:
        """Referrals one delivery slot may carry: the most any service combines now."""
        sizes = [1]
        for service in self.services.values():
            transport = self._combining(service)
            if transport is not None:
                sizes.append(transport.per_request)
        return max(sizes)

    def _jobs(
        self, prepared: list[tuple[Claim, Prepared | Exception]], stats: DeliveryStats
    ) -> list[Coroutine[None, None, None]]:
        """One job per referral, or per group a combining transport takes in one send."""
        jobs: list[Coroutine[None, None, None]] = []
        groups: dict[str, tuple[CombiningTransport, list[tuple[Claim, ReferralEnvelope]]]] = {}
        for held, envelope in prepared:
            service_id = held.housing_service_id
            combining = self._combining(self.services.get(service_id))
            if (
                combining is not None
                and isinstance(envelope, ReferralEnvelope)
                and held.attempts <= self.config.max_attempts
            ):
                groups.setdefault(service_id, (combining, []))[1].append((held, envelope))
            else:
                jobs.append(self._deliver(held, envelope, stats))
        for transport, items in groups.values():
            size = transport.per_request
            for start in range(0, len(items), size):
                jobs.append(self._deliver_group(transport, items[start : start + size], stats))
        return jobs

    def _claim_safely(self, limit: int, stop: asyncio.Event | None) -> list[Claim]:
        try:
            return self.claim(limit)
        except (StorageError, SQLAlchemyError) as exc:
            if stop is None:
                raise  # a single pass reports it
            # A running worker waits for the database to come back.
            log.warning("outbox claim failed (%s); trying again", type(exc).__name__)
            return []

    def _prepare(self, claims: list[Claim]) -> list[tuple[Claim, Prepared | Exception]]:
        """Each claim's envelope, consent re-checked for the whole batch in one transaction."""
        wanted = [
            (held.referral_id, self.services[held.housing_service_id])
            for held in claims
            if held.attempts <= self.config.max_attempts
            and held.housing_service_id in self.services
        ]
        found: dict[str, Prepared | Exception] = {}
        try:
            found.update(envelopes_for(self.db, wanted) if wanted else {})
        except Exception as exc:  # e.g. the database went away: each fails as its send would
            found = {referral_id: exc for referral_id, _ in wanted}
        # Claims left out are settled by _attempt's first checks.
        return [(held, found.get(held.referral_id)) for held in claims]

    def _record_delivered(self, stats: DeliveryStats) -> None:
        receipts, self._delivered = self._delivered, []
        try:
            outbox.mark_delivered_many(self.db, receipts, self.clock)
        except Exception:
            # Left in flight: sent again after the lease, and de-duplicated by the receiver.
            log.exception("recording %d deliveries failed", len(receipts))
            return
        stats.delivered += len(receipts)

    async def _deliver(
        self, held: Claim, prepared: Prepared | Exception, stats: DeliveryStats
    ) -> None:
        try:
            await self._attempt(held, prepared, stats)
        except Exception:  # the worker outlives anything one referral does
            log.exception("delivery bookkeeping failed", extra={"referral": held.referral_id})

    async def _attempt(
        self, held: Claim, prepared: Prepared | Exception, stats: DeliveryStats
    ) -> None:
        service_id = held.housing_service_id
        if held.attempts > self.config.max_attempts:
            # Claimed again and again without an outcome: workers keep dying on it.
            self._failed(held, stats, "attempts used up without an answer", False)
            return
        service = self.services.get(service_id)
        if service is None:
            self._failed(held, stats, f"housing service {service_id} is not configured", True)
            return
        try:
            if isinstance(prepared, Exception):
                raise prepared
            if prepared is None:
                self._settle_unsendable(held, stats)
                return
            async with asyncio.timeout(self.config.send_timeout_seconds):
                receipt = await self._transport(service).deliver(prepared)
        except Exception as exc:  # a bug in one transport must not stop the rest
            self._settle(held, exc, stats)
            return
        self._settle(held, receipt, stats)

    async def _deliver_group(
        self,
        transport: CombiningTransport,
        items: list[tuple[Claim, ReferralEnvelope]],
        stats: DeliveryStats,
    ) -> None:
        """Several referrals to one service in one send; each settled by its own outcome."""
        try:
            async with asyncio.timeout(self.config.send_timeout_seconds):
                outcomes = await transport.deliver_many([envelope for _, envelope in items])
        except Exception as exc:  # the whole send failed: each referral takes the failure
            outcomes = [exc] * len(items)
        for (held, _), outcome in zip(items, outcomes, strict=True):
            try:
                self._settle(held, outcome, stats)
            except Exception:  # the worker outlives anything one referral does
                log.exception("delivery bookkeeping failed", extra={"referral": held.referral_id})

    def _settle(self, held: Claim, outcome: Outcome, stats: DeliveryStats) -> None:
        """Record one send's outcome: a receipt to record, or a failure to retry or bury."""
        if isinstance(outcome, DeliveryReceipt):
            self._delivered.append(outbox.Delivered(held, outcome.remote_ref, outcome.status))
        elif isinstance(outcome, ConsentRequiredError):
            outbox.mark_cancelled(self.db, held, self.clock, outcome.message)
            stats.cancelled += 1
            log.info("referral not sent: consent not in force", extra=self._extra(held))
        elif isinstance(outcome, TimeoutError):
            self._failed(held, stats, "delivery timed out", True)
        elif isinstance(outcome, HealthyHomesError):
            log.debug("delivery failed", exc_info=outcome, extra=self._extra(held))
            if nothing_sent(outcome):  # the breaker held it back: not an attempt, just a wait
                held = replace(held, attempts=held.attempts - 1)
                self._retry(held, stats, safe_error(outcome), retry_after_of(outcome), sent=False)
            else:
                self._failed(
                    held, stats, safe_error(outcome), outcome.retryable, retry_after_of(outcome)
                )
        else:  # a bug in one transport must not stop the rest
            log.debug("delivery failed", exc_info=outcome, extra=self._extra(held))
            self._failed(held, stats, safe_error(outcome), True)

    def _settle_unsendable(self, held: Claim, stats: DeliveryStats) -> None:
        """The referral was sent by another path, or cancelled: close the entry to match."""
        with self.db.session() as session:
            referral = session.get(Referral, held.referral_id)
            sent = referral is not None and referral.status == ReferralStatus.SENT
        if sent:
            outbox.mark_delivered(self.db, held, self.clock, remote_ref=None, remote_status=None)
            stats.delivered += 1
        else:
            outbox.mark_cancelled(self.db, held, self.clock, "referral cancelled")
            stats.cancelled += 1

    def _failed(
        self,
        held: Claim,
        stats: DeliveryStats,
        error: str,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        verdict = self.policy.after_failure(
            held.attempts, retryable=retryable, retry_after=retry_after
        )
        if verdict.dead:
            if outbox.mark_dead(self.db, held, self.clock, error):
                stats.dead += 1
            else:
                stats.lost_lease += 1
            return
        self._retry(held, stats, error, retry_after)

    def _retry(
        self,
        held: Claim,
        stats: DeliveryStats,
        error: str,
        retry_after: float | None,
        *,
        sent: bool = True,
    ) -> None:
        verdict = self.policy.after_failure(
            max(1, held.attempts), retryable=True, retry_after=retry_after, final=False
        )
        if outbox.schedule_retry(self.db, held, self.clock, verdict.delay, error, sent=sent):
            stats.retried += 1
            log.warning(
                "delivery attempt %d failed; next in %.1fs",
                held.attempts,
                verdict.delay,
                extra=self._extra(held),
            )
        else:
            stats.lost_lease += 1

    def _extra(self, held: Claim) -> dict[str, object]:
        return {"referral": held.referral_id, "attempt": held.attempts, "worker": self.owner}
