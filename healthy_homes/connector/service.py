"""The connector's practices at run time: one client and one lock per practice.

Never two runs of one practice at once, in this process (an asyncio lock per practice:
a scheduled incremental or appointment run that finds its practice busy is skipped, a
full run waits) or across processes (a practice guard from ``healthy_homes.ops.leases``:
an advisory lock on PostgreSQL, an expiring lease on SQLite; a run whose practice
another worker holds is skipped, a full run waits for it); at most
``max_concurrent_practices`` practices at once; each run has its own time limit, so a
practice whose server hangs delays no other. Each run's duration and outcome go to the
metrics and to ``practice_run`` for ``healthy-homes status``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from healthy_homes.clock import Clock
from healthy_homes.config.models import PracticeConfig, Settings
from healthy_homes.connector.appointments import watch_appointments
from healthy_homes.connector.context import (
    PracticeContext,
    ProgressHook,
    TransportFactory,
    practice_client,
)
from healthy_homes.connector.delivery.worker import worker_id
from healthy_homes.connector.practice_sync import sync_registers
from healthy_homes.connector.reports import Mode, PracticeRun, RunKind, RunReport
from healthy_homes.errors import HealthyHomesError
from healthy_homes.fhir.retry import RetryPolicy, Sleep
from healthy_homes.flags.capacity import capacity_from_settings
from healthy_homes.flags.lifecycle import FlagReport, raise_flags
from healthy_homes.metrics import PRACTICE_RUNS, SYNC_SECONDS, count_error
from healthy_homes.ops.leases import Held, PracticeGuard, job_name, practice_guard
from healthy_homes.ops.runs import record_run
from healthy_homes.store.db import Database

log = logging.getLogger(__name__)

EVENTS_KEPT = 1000
#: How often a full run waiting for another worker's practice asks again.
GUARD_POLL_SECONDS = 1.0


class ConnectorService:
    """Practices, their shared FHIR clients and locks; runs one practice or all of them."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        *,
        transport_for: TransportFactory | None = None,
        sleep: Sleep | None = None,
        policy: RetryPolicy | None = None,
        progress: ProgressHook | None = None,
        owner: str | None = None,
        guard: PracticeGuard | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        #: The housing teams' capacity (``capacity_url`` per service) throttles new flags.
        self.capacity = capacity_from_settings(settings, clock=clock)
        #: This process's name in leases and run records.
        self.owner = owner or worker_id()
        self.guard = guard or practice_guard(db, self.owner, settings.ops.lease_seconds, clock)
        self.contexts: dict[str, PracticeContext] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        #: The latest (event, practice, kind) in order: "start", "end", "skip".
        self.events: deque[tuple[str, str, str]] = deque(maxlen=EVENTS_KEPT)
        #: Practices whose client could not be built (bad credentials): each run fails.
        self.broken: dict[str, str] = {}
        #: Runs in progress, so a shutdown can let them finish.
        self.active: set[asyncio.Task[object]] = set()
        #: The scheduler while ``serve`` runs it (readiness asks whether it is running).
        self.scheduler: AsyncIOScheduler | None = None
        self._slots = asyncio.Semaphore(settings.sync.max_concurrent_practices)
        for practice in settings.practices:
            transport = transport_for(practice.ods_code) if transport_for else None
            self.locks[practice.ods_code] = asyncio.Lock()
            try:
                client = practice_client(
                    practice, transport, clock=clock, sleep=sleep, policy=policy
                )
                self.contexts[practice.ods_code] = PracticeContext.build(
                    settings, practice, client, db, clock, sleep=sleep, progress=progress
                )
            except HealthyHomesError as exc:
                # One practice's bad key file or code set must not stop the others.
                self.broken[practice.ods_code] = str(exc)

    async def __aenter__(self) -> ConnectorService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every practice's client and the practice guard."""
        for ctx in self.contexts.values():
            await ctx.client.aclose()
        self.guard.close()

    async def tracked(self, job: Callable[[], Awaitable[object]]) -> None:
        """Run a scheduled job as work in progress, so a shutdown waits for it or cuts it."""
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        try:
            await job()
        finally:
            if task is not None:
                self.active.discard(task)

    def scheduler_running(self) -> bool:
        """Whether ``serve``'s scheduler is up (for readiness)."""
        return self.scheduler is not None and bool(self.scheduler.running)

    def timeout(self, practice: PracticeConfig) -> float:
        """Seconds one run of this practice may take."""
        return practice.timeout_seconds or self.settings.sync.practice_timeout_seconds

    async def run(
        self,
        ods: str,
        kind: RunKind = "auto",
        *,
        wait: bool | None = None,
        appointments: bool = False,
    ) -> PracticeRun:
        """Run one practice; skipped (not queued) if it is busy, unless ``wait`` or a full run.

        ``appointments`` adds an appointment watch after a sync (for one-off runs).
        """
        if ods in self.broken:
            return PracticeRun(ods, kind, error=self.broken[ods])
        ctx = self.contexts[ods]
        lock = self.locks[ods]
        result = PracticeRun(ods, kind)
        if wait is None:
            wait = kind == "full"
        if lock.locked() and not wait:
            result.skipped = True
            self.events.append(("skip", ods, kind))
            log.info("practice busy; %s run skipped", kind, extra={"practice": ods})
            return result
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        try:
            await self._locked_run(ctx, lock, result, appointments)
        finally:
            if task is not None:
                self.active.discard(task)
        return result

    async def _locked_run(
        self, ctx: PracticeContext, lock: asyncio.Lock, result: PracticeRun, appointments: bool
    ) -> None:
        ods, kind = ctx.ods, result.kind
        async with lock, self._slots:
            held = await self._guard(ctx, result)
            if held is None:
                return
            began = time.perf_counter()
            try:
                await self._guarded_run(ctx, result, appointments)
            finally:
                await held.release()
            SYNC_SECONDS.labels(practice=ods, kind=kind).observe(time.perf_counter() - began)
            PRACTICE_RUNS.labels(ods, kind, "failed" if result.error else "ok").inc()
            record_run(self.db, result, self.owner)
            if result.error:
                log.warning("practice run failed: %s", result.error, extra={"practice": ods})

    async def _guard(self, ctx: PracticeContext, result: PracticeRun) -> Held | None:
        """This practice's cross-process guard; a full run waits for it, others skip."""
        ods, kind = ctx.ods, result.kind
        deadline = time.monotonic() + self.timeout(ctx.practice)
        while True:
            try:
                held = await self.guard.try_acquire(job_name("sync", ods))
            except Exception as exc:  # the store is down: this run cannot be guarded
                count_error("guard", exc)
                result.error = f"practice guard unavailable ({type(exc).__name__})"
                self.events.append(("skip", ods, kind))
                return None
            if held is not None:
                return held
            if kind != "full" or time.monotonic() >= deadline:
                result.skipped = True
                PRACTICE_RUNS.labels(ods, kind, "skipped").inc()
                self.events.append(("skip", ods, kind))
                log.info(
                    "practice busy on another worker; %s run skipped", kind, extra={"practice": ods}
                )
                return None
            await asyncio.sleep(GUARD_POLL_SECONDS)

    async def _guarded_run(
        self, ctx: PracticeContext, result: PracticeRun, appointments: bool
    ) -> None:
        ods, kind = ctx.ods, result.kind
        result.started = self.clock.now()
        self.events.append(("start", ods, kind))
        try:
            async with asyncio.timeout(self.timeout(ctx.practice)):
                await self._run(ctx, kind, result, appointments)
        except TimeoutError:
            result.error = f"run took longer than {self.timeout(ctx.practice):g} s"
            count_error("sync", "Timeout")
        except HealthyHomesError as exc:
            result.error = str(exc)
            count_error("sync", exc)
        except Exception as exc:
            # Not our error type: its text may carry data, so only the type is kept.
            result.error = f"unexpected {type(exc).__name__}"
            count_error("sync", exc)
            log.exception("practice run crashed", extra={"practice": ods})
        finally:
            result.finished = self.clock.now()
            self.events.append(("end", ods, kind))

    async def _run(
        self, ctx: PracticeContext, kind: RunKind, result: PracticeRun, appointments: bool
    ) -> None:
        if kind == "appointments":
            result.appointments = await watch_appointments(ctx)
            return
        mode: Mode = kind
        result.sync = await sync_registers(ctx, mode)
        full = any(m == "full" for m in result.sync.read_mode.values())
        if full or result.sync.anyone_joined:
            result.flags = await raise_flags(
                self.db,
                ctx.client,
                ctx.ods,
                ctx.registers,
                self.settings.flags,
                self.clock,
                capacity=self.capacity,
            )
        else:
            result.flags = FlagReport()  # nobody new: nothing to decide
        if appointments:
            result.appointments = await watch_appointments(ctx)

    async def run_all(
        self,
        kind: RunKind = "auto",
        practices: Sequence[str] | None = None,
        *,
        appointments: bool = False,
    ) -> RunReport:
        """Run practices concurrently (up to the limit); each one's failure stays its own."""
        chosen = list(practices) if practices is not None else list(self.locks)
        runs = await asyncio.gather(
            *(self.run(ods, kind, appointments=appointments) for ods in chosen)
        )
        return RunReport(list(runs))
