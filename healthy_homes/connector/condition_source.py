"""Reading registers by Condition search on their codes (the default source).

Full, one register at a time: ``Condition?code=<codes>&_sort=_lastUpdated``.
Incremental, every register of the practice at once: one search on all their codes
with ``_lastUpdated=ge<oldest watermark - overlap>``, each Condition classified for
each register whose codes it carries (what a search per register would have sent
it), so a poll that finds nothing costs one request, not one per register. Whether
the patients are alive and registered is then looked up with minimal elements
(:mod:`patients`): after a full read for all of them, after an incremental one only
for patients not seen before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.pages import (
    fhir_instant,
    later,
    read_ahead,
    server_time,
    split_entries,
)
from healthy_homes.connector.patients import StatusLookups
from healthy_homes.connector.sink import ConditionSink, RegisterRead
from healthy_homes.registers.definitions import MAX_TOKEN_CHARS, RegisterDefinition

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Codes = frozenset[tuple[str, str]]


def condition_params(
    ctx: PracticeContext, token: str, since: datetime | None
) -> dict[str, str | list[str]]:
    """The search parameters of one register read."""
    params: dict[str, str | list[str]] = {
        "code": token,
        "_sort": "_lastUpdated",
        "_count": ctx.page_size,
    }
    if since is not None:
        params["_lastUpdated"] = "ge" + fhir_instant(since)
    return params


def register_codes(register: RegisterDefinition) -> Codes:
    """Every (system, code) a register reads: diagnosis, resolved and exclusion codes."""
    return register.diagnosis_codes() | register.resolved_codes() | register.exclusion_codes()


def code_tokens(codes: Codes, max_chars: int = MAX_TOKEN_CHARS) -> list[str]:
    """FHIR token values (comma = OR) covering ``codes``, each of bounded length."""
    tokens: list[str] = []
    current: list[str] = []
    size = 0
    for system, code in sorted(codes):
        token = f"{system}|{code}"
        if current and size + len(token) + 1 > max_chars:
            tokens.append(",".join(current))
            current, size = [], 0
        current.append(token)
        size += len(token) + 1
    if current:
        tokens.append(",".join(current))
    return tokens


def condition_codes(condition: JSON) -> set[tuple[str, str]]:
    """The (system, code) pairs of a Condition's code, as the register rules read them."""
    coding = (condition.get("code") or {}).get("coding") or []
    return {(str(c.get("system")), str(c.get("code"))) for c in coding if c.get("code")}


@dataclass
class _Target:
    """One register being read: where its Conditions go, and which codes are its own."""

    register: RegisterDefinition
    watermark: datetime | None
    sink: ConditionSink
    codes: Codes | None  # None: every Condition of the search is this register's


@dataclass
class _Paged:
    started: datetime | None = None
    drift: bool = False


async def read_by_condition(
    ctx: PracticeContext, register: RegisterDefinition, watermark: datetime | None
) -> RegisterRead:
    """Read a register: in full when ``watermark`` is None, else the changes since it."""
    full = watermark is None
    target = _Target(
        register,
        watermark,
        ConditionSink(ctx.db, ctx.ods, register, ctx.clock.now(), full=full),
        None,
    )
    [read] = await _read(ctx, [target], register.search_tokens(), full=full)
    return read


async def read_changes_together(
    ctx: PracticeContext, registers: list[tuple[RegisterDefinition, datetime]]
) -> list[RegisterRead]:
    """Read the changes of several registers since their watermarks with one search.

    It starts from the oldest watermark (less the overlap); Conditions a register has
    seen before are simply stored again, which changes nothing.
    """
    now = ctx.clock.now()
    targets = [
        _Target(r, w, ConditionSink(ctx.db, ctx.ods, r, now, full=False), register_codes(r))
        for r, w in registers
    ]
    codes = frozenset().union(*(t.codes or frozenset() for t in targets))
    return await _read(ctx, targets, code_tokens(codes), full=False)


async def _read(
    ctx: PracticeContext, targets: list[_Target], tokens: list[str], *, full: bool
) -> list[RegisterRead]:
    marks = [t.watermark for t in targets if t.watermark is not None]
    since = None if full or not marks else min(marks) - ctx.overlap
    lookups = StatusLookups(ctx, recheck=full)
    try:
        paged = await _page(ctx, tokens, since, targets, lookups, full=full)
        found = await lookups.finish()
    finally:
        lookups.cancel()
    reads = []
    for target in targets:
        register, sink = target.register, target.sink
        if paged.drift:
            log.warning(
                "register changed while it was paged; keeping the old watermark",
                extra={"practice": ctx.ods, "register": register.name},
            )
        sink.add_statuses(found)
        change = sink.finish(delete_unseen=not paged.drift, known=ctx.answered)
        # After drift the old watermark stays, so the next run reads the same span again.
        watermark = target.watermark
        new_watermark = (
            watermark if paged.drift else later(watermark, later(paged.started, sink.newest))
        )
        reads.append(
            RegisterRead(
                register.name,
                full,
                scanned=sink.scanned,
                change=change,
                watermark=new_watermark,
                server_time=paged.started,
                status_changed=sink.status_changed,
                assumed=sink.assumed,
            )
        )
    return reads


async def _page(
    ctx: PracticeContext,
    tokens: list[str],
    since: datetime | None,
    targets: list[_Target],
    lookups: StatusLookups,
    *,
    full: bool,
) -> _Paged:
    """Page through the searches into the targets' sinks; server start time and drift."""
    paged = _Paged()
    for token in tokens:
        pages = 0
        first_time: datetime | None = None
        async for bundle in read_ahead(
            ctx.client.search_pages("Condition", condition_params(ctx, token, since))
        ):
            pages += 1
            if first_time is None:
                first_time = server_time(bundle)
            conditions, included = split_entries(bundle, "Condition")
            newest = _route(ctx, conditions, included, targets)
            wanted: set[str] = set()
            for target in targets:
                wanted |= target.sink.take_subjects()
            await lookups.want(wanted)
            if not full and any(target.sink.due() for target in targets):
                await lookups.settle()  # an incremental read stores no patient before its status
            statuses = lookups.take()
            for target in targets:
                target.sink.add_statuses(statuses)
                target.sink.flush()
            # A Condition changed after the first page was made means the server's paging
            # may have shifted under us (servers without snapshot paging skip an entry).
            if first_time is not None and newest is not None and newest > first_time:
                paged.drift = paged.drift or pages > 1 or bool(bundle_next(bundle))
        paged.started = (
            first_time if paged.started is None else min(paged.started, first_time or paged.started)
        )
    return paged


def _route(
    ctx: PracticeContext, conditions: list[JSON], included: list[JSON], targets: list[_Target]
) -> datetime | None:
    """Hand each target the page's Conditions that are its own; the page's newest time."""
    newest: datetime | None = None
    coded = None
    if any(t.codes is not None for t in targets):
        coded = [(c, condition_codes(c)) for c in conditions]
    for target in targets:
        if target.codes is None or coded is None:
            mine = conditions
        else:
            codes = target.codes
            mine = [c for c, found in coded if not codes.isdisjoint(found)]
        newest = later(newest, target.sink.add(mine, included))
        ctx.report(target.register.name, len(mine))
    return newest


def bundle_next(bundle: dict[str, object]) -> bool:
    """Whether the page has a next link."""
    links = bundle.get("link") or []
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in links
    )
