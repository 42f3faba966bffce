"""Reading searchset pages: matches and includes, server times, and read-ahead."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from healthy_homes.fhir.client import notify_sent
from healthy_homes.fhir.resources import parse_instant

JSON = dict[str, Any]
T = TypeVar("T")


def split_entries(bundle: JSON, resource_type: str) -> tuple[list[JSON], list[JSON]]:
    """The page's matches of ``resource_type`` and its included resources."""
    matches: list[JSON] = []
    included: list[JSON] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        mode = (entry.get("search") or {}).get("mode", "match")
        if mode == "include":
            included.append(resource)
        elif mode == "match" and resource.get("resourceType") == resource_type:
            matches.append(resource)
    return matches, included


def last_updated(resource: JSON) -> datetime | None:
    """The resource's ``meta.lastUpdated`` (the server's clock)."""
    return parse_instant((resource.get("meta") or {}).get("lastUpdated"))


def newest_updated(resources: Iterable[JSON]) -> datetime | None:
    """The newest ``meta.lastUpdated`` among the resources.

    UTC instants ('Z') with the same number of digits sort as strings, so when all have
    that shape only the newest is parsed (a page's worth of parsing otherwise).
    """
    stamps = [
        stamp
        for resource in resources
        if isinstance(stamp := (resource.get("meta") or {}).get("lastUpdated"), str)
    ]
    if not stamps:
        return None
    if len({len(stamp) for stamp in stamps}) == 1 and all(s.endswith("Z") for s in stamps):
        newest = parse_instant(max(stamps))
        if newest is not None:
            return newest
    return max((t for stamp in stamps if (t := parse_instant(stamp))), default=None)


def server_time(bundle: JSON) -> datetime | None:
    """When the server produced the Bundle (its ``meta.lastUpdated``), if it says."""
    return last_updated(bundle)


def fhir_instant(moment: datetime) -> str:
    """A FHIR instant in UTC with microseconds, for ``_lastUpdated`` and ``_since``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two optional times."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


async def started(fetch: Awaitable[T]) -> asyncio.Task[T]:
    """Start ``fetch`` as a task; return once its request is on the wire, or it ended.

    A task created now only runs when this coroutine next yields to the event loop.
    Returning before the request has left would let the caller's CPU-bound work (a
    page classified and stored) run first, and the server would sit idle meanwhile.
    Waiting gives the loop to other work too, so nothing idles that could run.
    """
    on_wire = asyncio.Event()
    with notify_sent(on_wire.set):
        task = asyncio.ensure_future(fetch)  # the task copies this context, callback included
    waiter = asyncio.ensure_future(on_wire.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()  # our caller is gone (cancelled): nobody would await the fetch
        raise
    finally:
        waiter.cancel()
    return task


async def read_ahead(pages: AsyncIterator[JSON]) -> AsyncIterator[JSON]:
    """Yield pages while the next one is already being fetched.

    The request for page n+1 is on the wire before page n is yielded, so the server
    builds it while we store page n; at most one request per stream is in flight.
    """
    iterator = aiter(pages)
    pending: asyncio.Task[JSON] | None = await started(anext(iterator))
    try:
        while pending is not None:
            try:
                page = await pending
            except StopAsyncIteration:
                pending = None
                return
            pending = await started(anext(iterator))
            yield page
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
