"""Streaming ndjson bodies, and decoding answers that are not (whole) JSON."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from healthy_homes.errors import FhirResponseError, FhirStatusError, FhirTransportError
from healthy_homes.fhir.auth import BearerAuth
from healthy_homes.fhir.client import FhirClient
from healthy_homes.serving import ServerThread
from tests.fhir.fhir_fakes import MakeClient, ScriptedServer, SleepRecorder, bundle


class Body(httpx.AsyncByteStream):
    """A response body arriving in the given chunks, then failing if told to."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


def ndjson(chunks: list[bytes], error: Exception | None = None) -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Type": "application/fhir+ndjson"}, stream=Body(chunks, error)
    )


async def lines_of(
    client: FhirClient, url: str = "https://files.example/out.ndjson"
) -> list[bytes]:
    return [line async for line in client.stream_lines(url)]


async def test_lines_are_whole_whatever_the_chunks(make_client: MakeClient) -> None:
    chunks = [b'{"a":', b'1}\r\n\n{"b":2}\n{"c"', b":3}"]
    server = ScriptedServer([ndjson(chunks)])
    async with make_client(server) as client:
        assert await lines_of(client) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert len(server.requests) == 1


async def test_an_empty_body_yields_nothing(make_client: MakeClient) -> None:
    server = ScriptedServer([ndjson([b"", b"\n"])])
    async with make_client(server) as client:
        assert await lines_of(client) == []


async def test_failures_before_the_first_line_are_retried_as_one_call(
    make_client: MakeClient, sleeps: SleepRecorder
) -> None:
    server = ScriptedServer(
        [
            httpx.Response(503),
            httpx.ReadError("reset"),
            ndjson([b'{"a"'], httpx.RemoteProtocolError("peer closed")),  # no whole line yet
        ],
        then=ndjson([b'{"a":1}\n']),
    )
    async with make_client(server) as client:
        assert await lines_of(client) == [b'{"a":1}']
    assert len(server.requests) == 4
    assert len(sleeps.calls) == 3
    assert len({r.headers["X-Request-Id"] for r in server.requests}) == 1


async def test_a_body_cut_off_after_a_line_is_not_repeated_behind_the_callers_back(
    make_client: MakeClient, sleeps: SleepRecorder
) -> None:
    server = ScriptedServer(
        [ndjson([b'{"a":1}\n{"b"'], httpx.RemoteProtocolError("peer closed"))],
        then=ndjson([b'{"a":1}\n{"b":2}\n']),
    )
    seen: list[bytes] = []

    async def read(client: FhirClient) -> None:
        async for line in client.stream_lines("https://files.example/out.ndjson"):
            seen.append(line)

    async with make_client(server) as client:
        with pytest.raises(FhirTransportError) as caught:
            await read(client)
    assert seen == [b'{"a":1}']
    assert caught.value.retryable
    assert caught.value.url == "https://files.example/out.ndjson"
    assert len(server.requests) == 1
    assert sleeps.calls == []


async def test_an_error_status_is_mapped_with_its_diagnostics(make_client: MakeClient) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "diagnostics": "export expired"}],
    }
    server = ScriptedServer([httpx.Response(404, json=outcome)])
    async with make_client(server) as client:
        with pytest.raises(FhirStatusError) as caught:
            await lines_of(client, "Binary/out?x=secret")
    assert caught.value.status_code == 404
    assert caught.value.diagnostics == "export expired"
    assert "secret" not in str(caught.value)
    assert len(server.requests) == 1


async def test_closing_the_stream_early_closes_the_response(make_client: MakeClient) -> None:
    body = Body([b'{"a":1}\n{"b":2}\n'])
    server = ScriptedServer([httpx.Response(200, stream=body)])
    async with make_client(server) as client:
        lines = client.stream_lines("out.ndjson")
        async with contextlib.aclosing(lines):
            async for _ in lines:
                break
        assert body.closed


def test_credentials_go_only_where_asked() -> None:
    app = FastAPI()

    @app.get("/out.ndjson")
    def out(request: Request) -> PlainTextResponse:
        said = request.headers.get("authorization", "none")
        return PlainTextResponse(f'{{"auth":"{said}"}}\n')

    async def both(base: str) -> tuple[list[bytes], list[bytes]]:
        async with FhirClient(base, practice="A12345", auth=BearerAuth("t0ken")) as client:
            mine = await lines_of(client, f"{base}/out.ndjson")
            presigned = [
                line async for line in client.stream_lines(f"{base}/out.ndjson", credentials=False)
            ]
        return mine, presigned

    with ServerThread(app) as base:
        mine, presigned = asyncio.run(both(base))
    assert mine == [b'{"auth":"Bearer t0ken"}']
    assert presigned == [b'{"auth":"none"}']


BROKEN_BODIES = {
    "truncated": b'{"resourceType": "Bundle", "type": "searchset", "ent',
    "empty": b"",
    "html": b"<html>bad gateway</html>",
    "not utf-8": b'{"resourceType": "Bundle", "id": "\xff\xfe"}',
    "a list": b'[{"resourceType": "Bundle"}]',
    "no resourceType": b'{"type": "searchset"}',
}


@pytest.mark.parametrize("body", list(BROKEN_BODIES.values()), ids=list(BROKEN_BODIES))
async def test_a_body_that_is_not_a_resource_is_a_response_error(
    make_client: MakeClient, body: bytes
) -> None:
    server = ScriptedServer([httpx.Response(200, content=body)], then=httpx.Response(200))
    async with make_client(server) as client:
        with pytest.raises(FhirResponseError) as caught:
            await client.request_json("GET", "Condition?code=x", expect="Bundle")
    assert caught.value.retryable
    assert caught.value.url == "https://gp.example.org/fhir/Condition"
    assert len(server.requests) == 4  # retried: a cut-off page is usually transient


async def test_a_whole_page_decodes_with_unicode_intact(make_client: MakeClient) -> None:
    page = bundle(id="b1", entry=[{"resource": {"resourceType": "Patient", "id": "p1"}}])
    page["meta"] = {"tag": [{"display": "Gwasanaeth Iechyd \u2014 \u00e2\u00f4"}]}
    server = ScriptedServer([httpx.Response(200, json=page)])
    async with make_client(server) as client:
        assert await client.request_json("GET", "Patient", expect="Bundle") == page
