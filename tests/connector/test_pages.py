"""Starting a fetch returns once its request is on the wire, so storing overlaps the server."""

from __future__ import annotations

import asyncio
import threading

import httpx
from fastapi import FastAPI

from healthy_homes.connector.pages import read_ahead, started
from healthy_homes.fhir.client import FhirClient
from healthy_homes.serving import ServerThread


def _held_server() -> tuple[FastAPI, threading.Event, threading.Event]:
    """A FHIR endpoint that notes each request's arrival and answers only when released."""
    app = FastAPI()
    arrived, release = threading.Event(), threading.Event()

    @app.get("/fhir/Patient")
    def patients() -> dict[str, object]:
        arrived.set()
        release.wait(30)
        return {"resourceType": "Bundle", "type": "searchset", "entry": []}

    return app, arrived, release


def test_started_returns_while_the_server_still_works_on_the_request() -> None:
    app, arrived, release = _held_server()

    async def go(base: str) -> None:
        async with FhirClient(f"{base}/fhir") as client:
            task = await asyncio.wait_for(started(client.request_json("GET", "Patient")), 30)
            assert not task.done()  # back before the answer...
            # ...with the request already out: found while we hold the event loop, as
            # storing a page would.
            assert arrived.wait(10)
            release.set()
            assert (await task)["resourceType"] == "Bundle"

    with ServerThread(app) as base:
        asyncio.run(go(base))


def test_without_tracing_the_fetch_is_simply_done_first() -> None:
    # A transport that reports nothing (in-process, say) still works: started() waits it out.
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})

    async def go() -> None:
        transport = httpx.MockTransport(answer)
        async with FhirClient("https://gp.example/fhir", transport=transport) as client:
            task = await started(client.request_json("GET", "Patient"))
            assert task.done() and task.result()["type"] == "searchset"

    asyncio.run(go())


def test_read_ahead_asks_for_the_next_page_before_handing_over_this_one() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        seen.append(f"sent {page}")
        bundle: dict[str, object] = {"resourceType": "Bundle", "type": "searchset", "id": str(page)}
        if page < 3:
            bundle["link"] = [{"relation": "next", "url": f"Patient?page={page + 1}"}]
        return httpx.Response(200, json=bundle)

    async def go() -> None:
        transport = httpx.MockTransport(answer)
        async with FhirClient("https://gp.example/fhir", transport=transport) as client:
            async for page in read_ahead(client.search_pages("Patient")):
                seen.append(f"got {page['id']}")

    asyncio.run(go())
    assert seen == ["sent 1", "sent 2", "got 1", "sent 3", "got 2", "got 3"]
