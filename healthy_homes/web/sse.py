"""Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html).

One event is ``event:``, ``id:`` and a single ``data:`` line of JSON; an idle stream
sends a comment now and then so proxies keep it open and a dead client is noticed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

MEDIA_TYPE = "text/event-stream"
HEADERS = {"X-Accel-Buffering": "no"}  # stop nginx-style proxies buffering the stream


@dataclass(frozen=True)
class Event:
    """One named event with a JSON payload."""

    name: str
    data: Any
    id: str | None = None


def encode(event: Event) -> bytes:
    """The wire form of one event."""
    lines = [f"event: {event.name}"]
    if event.id is not None:
        lines.append(f"id: {event.id}")
    # json.dumps never emits a raw newline, so the payload is always one data line.
    lines.append("data: " + json.dumps(event.data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


async def stream(
    queue: asyncio.Queue[Event | None],
    *,
    heartbeat_seconds: float = 15.0,
    retry_ms: int = 2000,
) -> AsyncIterator[bytes]:
    """Encode events from ``queue`` until it yields None; comments while idle."""
    yield f"retry: {retry_ms}\n\n".encode()
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), heartbeat_seconds)
        except TimeoutError:
            yield b": keep-alive\n\n"
            continue
        if event is None:
            return
        yield encode(event)
