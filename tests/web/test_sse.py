"""Server-Sent Events wire format and stream behaviour."""

from __future__ import annotations

import asyncio

from healthy_homes.web.sse import Event, encode, stream


def test_an_event_is_one_data_line_of_json() -> None:
    wire = encode(Event("arrived", {"name": "A\nB <b>"}, id="f1")).decode()
    assert wire == 'event: arrived\nid: f1\ndata: {"name":"A\\nB <b>"}\n\n'


async def test_stream_sends_retry_heartbeats_events_and_ends() -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    chunks = stream(queue, heartbeat_seconds=0.01, retry_ms=1500)
    assert await anext(chunks) == b"retry: 1500\n\n"
    assert await anext(chunks) == b": keep-alive\n\n"  # nothing queued yet
    await queue.put(Event("status", {"ok": True}))
    await queue.put(None)
    assert await anext(chunks) == b'event: status\ndata: {"ok":true}\n\n'
    assert [c async for c in chunks] == []
