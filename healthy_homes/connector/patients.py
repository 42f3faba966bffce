"""Whether register patients are alive and registered: looked up with minimal elements.

``Patient?_id=…&_elements=id,active,deceasedBoolean,deceasedDateTime`` brings back
only what the register rules need, never names or addresses (an ``_include`` of the
subject would carry whole Patients). Each patient is looked up at most once a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from urllib.parse import quote

from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.pages import split_entries, started
from healthy_homes.registers.conditions import known_patients, write_statuses
from healthy_homes.registers.rules import patient_is_current
from healthy_homes.registers.statements import chunks

STATUS_ELEMENTS = "id,active,deceasedBoolean,deceasedDateTime"
IDS_PER_SEARCH = 100
# Lookups in flight at once: the server works on one while we store another.
PARALLEL_LOOKUPS = 2


async def fetch_statuses(ctx: PracticeContext, patients: Iterable[str]) -> dict[str, bool]:
    """Patient id -> current (alive and registered), by ``Patient?_id=`` in batches."""
    found: dict[str, bool] = {}
    for ids in chunks(sorted(set(patients)), IDS_PER_SEARCH):
        # FHIR ids need no escaping; quote() keeps a stray character from changing the query.
        query = (
            f"_id={quote(','.join(ids), safe=',')}"
            f"&_elements={quote(STATUS_ELEMENTS, safe=',')}&_count={IDS_PER_SEARCH}"
        )
        async for bundle in ctx.client.search_pages("Patient", query=query):
            for patient in split_entries(bundle, "Patient")[0]:
                if patient.get("id"):
                    found[str(patient["id"])] = patient_is_current(patient)
    return found


class StatusLookups:
    """Patient status lookups started while a register is still being paged.

    Each full batch of new patients is looked up at once, so the lookups overlap the
    paging instead of following it; :meth:`finish` waits for them and stores the result.
    """

    def __init__(self, ctx: PracticeContext, *, recheck: bool) -> None:
        self.ctx = ctx
        self.recheck = recheck
        self._pending: set[str] = set()
        self._asked: set[str] = set()
        self._found: dict[str, bool] = {}
        self._answered = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(PARALLEL_LOOKUPS)

    async def want(self, patients: Iterable[str]) -> None:
        """Note patients whose status is needed; start a lookup for each full batch.

        Returns once a started lookup is on the wire (when a slot is free), so the
        caller's next stretch of work overlaps the server answering it.
        """
        self._pending |= set(patients) - self._asked - self.ctx.checked
        while len(self._pending) >= IDS_PER_SEARCH:
            batch = sorted(self._pending)[:IDS_PER_SEARCH]
            await self._start(batch)

    def take(self) -> dict[str, bool]:
        """Statuses answered since the last call (to store them as they come)."""
        found, self._found = self._found, {}
        return found

    async def _start(self, batch: list[str]) -> None:
        self._pending -= set(batch)
        self._asked |= set(batch)
        # Registers read side by side share patients: claim them now, not when answered.
        self.ctx.checked |= set(batch)
        if not self.recheck:
            # Incremental: patients the register state holds are kept current by the Patient
            # poll. (An incremental read stores no patient before its status: see settle.)
            with self.ctx.db.session() as session:
                batch = sorted(set(batch) - known_patients(session, self.ctx.ods, batch))
        if not batch:
            return
        lookup = self._lookup(batch)
        # With both slots taken the lookup would only queue: nothing to wait for.
        task = asyncio.ensure_future(lookup) if self._slots.locked() else await started(lookup)
        self._tasks.append(task)

    async def _lookup(self, batch: list[str]) -> None:
        async with self._slots:
            found = await fetch_statuses(self.ctx, batch)
        self._found.update(found)
        self.ctx.answered.update(found)
        self._answered += len(found)

    async def settle(self) -> None:
        """Look up every patient noted so far and wait for the answers (take them after).

        An incremental read calls this before it stores Conditions mid-read. Were the
        read to fail after that, the next one would find those patients in the store,
        take them for looked up and kept current, and never ask (a deceased patient back
        on a register); so their statuses are stored with them.
        """
        while self._pending:
            await self._start(sorted(self._pending)[:IDS_PER_SEARCH])
        running, self._tasks = self._tasks, []
        try:
            results = await asyncio.gather(*running, return_exceptions=True)
        except BaseException:
            self._tasks = running  # cancelled while waiting: cancel() stops them
            raise
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def finish(self) -> dict[str, bool]:
        """Wait for every lookup; patient id -> current for those not yet taken."""
        while self._pending:
            await self._start(sorted(self._pending)[:IDS_PER_SEARCH])
        try:
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self.cancel()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        self.ctx.report("patients", self._answered)
        return self.take()

    def cancel(self) -> None:
        """Stop lookups still running (the read failed); their errors are not news."""
        for task in self._tasks:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # marks it retrieved, so asyncio does not log it again


async def refresh_statuses(
    ctx: PracticeContext, patients: Iterable[str], *, recheck: bool
) -> set[str]:
    """Look up and store the status of these patients; return those whose status changed.

    ``recheck`` (full reads) looks up everyone not yet looked up in this run; otherwise
    only patients the register state does not hold yet (the Patient poll keeps the rest).
    """
    lookups = StatusLookups(ctx, recheck=recheck)
    await lookups.want(patients)
    found = await lookups.finish()
    with ctx.db.session() as session:
        return write_statuses(session, ctx.ods, found, ctx.clock.now())
