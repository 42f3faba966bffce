"""Reading a register by Condition search on its codes (the default source).

Full: ``Condition?code=<codes>&_sort=_lastUpdated``. Incremental: the same with
``_lastUpdated=ge<watermark - overlap>``. Whether the patients are alive and registered
is then looked up with minimal elements (:mod:`patients`): after a full read for all of
them, after an incremental one only for patients not seen before.
"""

from __future__ import annotations

import logging
from datetime import datetime

from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.pages import (
    fhir_instant,
    last_updated,
    later,
    read_ahead,
    server_time,
    split_entries,
)
from healthy_homes.connector.patients import StatusLookups
from healthy_homes.connector.sink import ConditionSink, RegisterRead
from healthy_homes.registers.definitions import RegisterDefinition

log = logging.getLogger(__name__)


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


async def read_by_condition(
    ctx: PracticeContext, register: RegisterDefinition, watermark: datetime | None
) -> RegisterRead:
    """Read a register: in full when ``watermark`` is None, else the changes since it."""
    full = watermark is None
    since = None if watermark is None else watermark - ctx.overlap
    sink = ConditionSink(ctx.db, ctx.ods, register, ctx.clock.now(), full=full)
    lookups = StatusLookups(ctx, recheck=full)
    try:
        started, drift = await _page(ctx, register, since, sink, lookups)
        sink.add_statuses(await lookups.finish())
    finally:
        lookups.cancel()
    if drift:
        log.warning(
            "register changed while it was paged; keeping the old watermark",
            extra={"practice": ctx.ods, "register": register.name},
        )
    change = sink.finish(delete_unseen=not drift)
    # After drift the old watermark stays, so the next run reads the same span again.
    new_watermark = watermark if drift else later(watermark, later(started, sink.newest))
    return RegisterRead(
        register.name,
        full,
        scanned=sink.scanned,
        change=change,
        watermark=new_watermark,
        server_time=started,
        status_changed=sink.status_changed,
    )


async def _page(
    ctx: PracticeContext,
    register: RegisterDefinition,
    since: datetime | None,
    sink: ConditionSink,
    lookups: StatusLookups,
) -> tuple[datetime | None, bool]:
    """Page through the register's searches into the sink; (server start time, drift)."""
    started: datetime | None = None
    drift = False
    for token in register.search_tokens():
        pages = 0
        first_time: datetime | None = None
        async for bundle in read_ahead(
            ctx.client.search_pages("Condition", condition_params(ctx, token, since))
        ):
            pages += 1
            if first_time is None:
                first_time = server_time(bundle)
            conditions, included = split_entries(bundle, "Condition")
            sink.add(conditions, included)
            lookups.want(sink.subjects)
            ctx.report(register.name, len(conditions))
            newest = max((t for c in conditions if (t := last_updated(c))), default=None)
            # A Condition changed after the first page was made means the server's paging
            # may have shifted under us (servers without snapshot paging skip an entry).
            if first_time is not None and newest is not None and newest > first_time:
                drift = drift or pages > 1 or bool(bundle_next(bundle))
        started = first_time if started is None else min(started, first_time or started)
    return started, drift


def bundle_next(bundle: dict[str, object]) -> bool:
    """Whether the page has a next link."""
    links = bundle.get("link") or []
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in links
    )
