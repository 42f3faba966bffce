"""One sync of one practice: each register by its source, then Patient changes, then flags.

Each register is read in full when it has no watermark (or its rules or source
changed) or when a full run is asked for; otherwise only its changes are read.
A register's watermark is stored only after its results are, so a failed run
loses nothing: the next run starts from the old watermark again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from healthy_homes.connector.bulk_source import read_by_bulk
from healthy_homes.connector.condition_source import read_by_condition, read_changes_together
from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.group_source import read_by_group
from healthy_homes.connector.incremental import needs_full, poll_patients
from healthy_homes.connector.reconcile import retire_orphaned_flags
from healthy_homes.connector.reports import Mode, SyncReport
from healthy_homes.connector.sink import RegisterRead
from healthy_homes.connector.state import (
    PATIENTS,
    forget_watermark,
    load_states,
    record_failure,
    record_success,
)
from healthy_homes.errors import FhirError, HealthyHomesError
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import MembershipChange, recompute
from healthy_homes.reporting.facts import record_register_counts
from healthy_homes.store.models import SyncState
from healthy_homes.store.reporting_models import ANY_REGISTER

log = logging.getLogger(__name__)


async def read_register(
    ctx: PracticeContext,
    register: RegisterDefinition,
    state: SyncState | None,
    full: bool,
) -> RegisterRead:
    """Read one register by the practice's configured source."""
    source = ctx.practice.register_source
    watermark = None if full or state is None else state.watermark
    group_id = state.resource_id if state is not None and state.source == source else None
    if source == "group":
        return await read_by_group(ctx, register, watermark, group_id)
    if source == "bulk":
        return await read_by_bulk(ctx, register, watermark, group_id)
    return await read_by_condition(ctx, register, watermark)


async def sync_registers(ctx: PracticeContext, mode: Mode = "auto") -> SyncReport:
    """Bring every enabled register of the practice up to date; raise if any failed."""
    source = ctx.practice.register_source
    states = load_states(ctx.db, ctx.ods)
    report = SyncReport(ctx.ods)
    ctx.checked, ctx.answered = set(), {}
    changes: dict[str, MembershipChange] = {}
    status_changed: set[str] = set()
    server_times: list[datetime] = []
    failures: list[HealthyHomesError] = []
    slots = asyncio.Semaphore(ctx.sync.parallel_reads)

    def is_full(register: RegisterDefinition) -> bool:
        return mode == "full" or needs_full(states.get(register.name), register, source)

    def failed(registers: list[RegisterDefinition], exc: FhirError) -> None:
        failures.append(exc)
        for register in registers:
            record_failure(ctx.db, ctx.ods, register.name, source, str(exc), ctx.clock.now())
        log.warning("register read failed: %s", exc, extra={"practice": ctx.ods})

    def stored(register: RegisterDefinition, read: RegisterRead) -> RegisterRead:
        with ctx.db.session() as session:
            record_success(
                session,
                ctx.ods,
                register.name,
                source=source,
                watermark=read.watermark,
                now=ctx.clock.now(),
                full=read.full,
                fingerprint=register.fingerprint(),
                resource_id=read.resource_id,
            )
        return read

    async def one(register: RegisterDefinition) -> list[RegisterRead | None]:
        state = states.get(register.name)
        full = is_full(register)
        if full and state is not None and state.watermark is not None:
            # An interrupted full read must be redone in full, not continued incrementally.
            forget_watermark(ctx.db, ctx.ods, register.name, source, ctx.clock.now())
        try:
            async with slots:
                read = await read_register(ctx, register, state, full)
        except FhirError as exc:
            failed([register], exc)
            return [None]
        return [stored(register, read)]

    async def together(registers: list[RegisterDefinition]) -> list[RegisterRead | None]:
        # Not due a full read, so each has a watermark.
        marks = [(r, w) for r in registers if (w := states[r.name].watermark) is not None]
        try:
            async with slots:
                reads = await read_changes_together(ctx, marks)
        except FhirError as exc:
            failed([r for r, _ in marks], exc)
            return [None] * len(marks)
        return [stored(r, read) for (r, _), read in zip(marks, reads, strict=True)]

    # Condition search reads the changes of every register with one search; full reads,
    # Groups and exports go register by register, side by side (the server is mostly
    # waited for).
    combined = [r for r in ctx.registers if source == "condition" and not is_full(r)]
    alone = [r for r in ctx.registers if r not in combined]
    jobs = [one(r) for r in alone] + ([together(combined)] if combined else [])
    reads = [read for batch in await asyncio.gather(*jobs) for read in batch]
    assumed: dict[str, set[str] | None] = {}
    for read in reads:
        if read is None:
            continue
        report.read_mode[read.register] = "full" if read.full else "incremental"
        report.conditions_scanned += read.scanned
        changes[read.register] = read.change
        status_changed |= read.status_changed
        assumed[read.register] = read.assumed
        if read.full and read.server_time is not None:
            server_times.append(read.server_time)
    polled = (
        await _patient_step(ctx, states, report, server_times, mode) if source != "bulk" else set()
    )
    scopes: dict[str, set[str]] = {}
    for register in ctx.registers:
        # A status the reads found matters only where a read did not already use it.
        used = assumed.get(register.name)
        scopes[register.name] = polled | (status_changed if used is None else status_changed & used)
    if any(scopes.values()):
        with ctx.db.session() as session:
            for name, scope in scopes.items():
                if scope:
                    change = recompute(session, ctx.ods, name, scope, ctx.clock.now())
                    changes.setdefault(name, MembershipChange()).add(change)
    for name, change in changes.items():
        report.joined_register[name] = len(change.joined)
        report.left_register[name] = len(change.left)
    with ctx.db.session() as session:
        counts = record_register_counts(session, ctx.ods, ctx.clock.now())
    report.on_register = {r.name: counts.get(r.name, 0) for r in ctx.registers}
    report.patients = counts[ANY_REGISTER]
    report.flags_retired = await retire_orphaned_flags(ctx)
    ctx.checked, ctx.answered = set(), {}  # a run's lookups say nothing about the next run
    if failures:
        raise failures[0]
    return report


async def _patient_step(
    ctx: PracticeContext,
    states: dict[str, SyncState],
    report: SyncReport,
    server_times: list[datetime],
    mode: Mode,
) -> set[str]:
    """Poll Patient changes, or start the Patient watermark after full reads."""
    state = states.get(PATIENTS)
    all_full = len(server_times) == len(ctx.registers) and bool(server_times)
    if mode == "full" or all_full or state is None or state.watermark is None:
        # Full reads looked up every register patient's status, so Patient changes
        # are due from the server time those reads began.
        start = min(server_times) if server_times else _oldest_watermark(states, ctx)
        if start is not None:
            with ctx.db.session() as session:
                record_success(
                    session,
                    ctx.ods,
                    PATIENTS,
                    source="patient",
                    watermark=start,
                    now=ctx.clock.now(),
                    full=True,
                )
        if mode == "full" or all_full or start is None:
            return set()
        state_watermark = start
    else:
        state_watermark = state.watermark
    try:
        poll = await poll_patients(ctx, state_watermark)
    except FhirError as exc:
        record_failure(ctx.db, ctx.ods, PATIENTS, "patient", str(exc), ctx.clock.now())
        raise
    with ctx.db.session() as session:
        record_success(
            session,
            ctx.ods,
            PATIENTS,
            source="patient",
            watermark=poll.watermark,
            now=ctx.clock.now(),
            full=False,
        )
    report.patients_polled = poll.scanned
    return poll.changed


def _oldest_watermark(states: dict[str, SyncState], ctx: PracticeContext) -> datetime | None:
    marks = [
        s.watermark
        for name, s in states.items()
        if name in {r.name for r in ctx.registers} and s.watermark is not None
    ]
    return min(marks) if marks else None
