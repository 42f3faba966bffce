"""Request ids, logging without patient data, and paging through next links."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urljoin

import httpx
import pytest

from healthy_homes.errors import FhirStatusError
from tests.fhir.fhir_fakes import BASE, MakeClient, ScriptedServer, bundle

OK = httpx.Response(200, json=bundle())
NHS_NUMBER = "9990001234"


async def test_each_call_carries_a_request_id_kept_across_retries(
    make_client: MakeClient,
) -> None:
    server = ScriptedServer([httpx.Response(503)], then=OK)
    async with make_client(server) as client:
        await client.request("GET", "Condition")
        await client.request("GET", "Condition")
    ids = [r.headers["X-Request-Id"] for r in server.requests]
    assert len(ids) == 3
    assert all(uuid.UUID(i) for i in ids)
    assert ids[0] == ids[1]  # a retry is the same request to the receiver
    assert ids[2] != ids[0]


async def test_caller_supplied_request_id_is_kept(make_client: MakeClient) -> None:
    server = ScriptedServer([], then=OK)
    async with make_client(server) as client:
        await client.request("GET", "Condition", headers={"X-Request-Id": "abc-123"})
    assert server.requests[0].headers["X-Request-Id"] == "abc-123"


async def test_log_names_method_path_status_attempt_but_no_query_or_body(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_diag = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "diagnostics": f"no patient {NHS_NUMBER}"}],
    }
    server = ScriptedServer([httpx.Response(500, json=secret_diag)], then=OK)
    caplog.set_level(logging.DEBUG, logger="healthy_homes.fhir")
    async with make_client(server) as client:
        await client.request_json(
            "GET",
            f"Patient/{NHS_NUMBER}",
            params={"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}"},
        )
    records = [r for r in caplog.records if r.name == "healthy_homes.fhir.client"]
    assert [(r.http_method, r.status, r.attempt) for r in records] == [  # type: ignore[attr-defined]
        ("GET", "500", 1),
        ("GET", "200", 2),
    ]
    assert records[0].path == "/fhir/Patient/[redacted]"  # type: ignore[attr-defined]
    assert all(r.request_id for r in records)  # type: ignore[attr-defined]
    assert all(isinstance(r.duration_ms, float) for r in records)  # type: ignore[attr-defined]
    assert NHS_NUMBER not in caplog.text
    assert "identifier" not in caplog.text


async def test_errors_carry_no_query_string_or_nhs_number(make_client: MakeClient) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "diagnostics": f"patient {NHS_NUMBER} unknown"}],
    }
    server = ScriptedServer([httpx.Response(404, json=outcome)])
    async with make_client(server) as client:
        with pytest.raises(FhirStatusError) as caught:
            await client.request("GET", f"Patient?identifier=x|{NHS_NUMBER}")
    assert caught.value.url == f"{BASE}/Patient"
    assert NHS_NUMBER not in str(caught.value)
    assert "[redacted]" in str(caught.value)


async def test_paging_follows_relative_and_absolute_next_links(make_client: MakeClient) -> None:
    def page(n: int, next_url: str | None) -> httpx.Response:
        links = [{"relation": "next", "url": next_url}] if next_url else []
        entry = [{"resource": {"resourceType": "Condition", "id": f"c{n}"}}]
        return httpx.Response(200, json=bundle(entry=entry, link=links))

    server = ScriptedServer(
        [
            page(1, "Condition?_getpages=x&page=2"),
            page(2, f"{BASE}/Condition?_getpages=x&page=3"),
            page(3, None),
        ]
    )
    async with make_client(server) as client:
        ids = [c["id"] async for c in client.search("Condition", {"code": "13645005"})]
    assert ids == ["c1", "c2", "c3"]
    assert [str(r.url) for r in server.requests] == [
        f"{BASE}/Condition?code=13645005",
        f"{BASE}/Condition?_getpages=x&page=2",
        f"{BASE}/Condition?_getpages=x&page=3",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "Patient?_id=a,b&_count=100",
        "Patient/pat-1.2",
        "Group/g1/$export?_type=Condition",
        "$export",
        "Patient/../Condition",
        "Patient/./x",
        "./Patient",
        "/fhir/Patient",
        "?_page=2",
        "https://elsewhere.example/fhir/Patient?x=1",
        "urn:uuid:1234",
        "Patient//x",
        "_history",
    ],
)
def test_resolve_agrees_with_urljoin(make_client: MakeClient, url: str) -> None:
    client = make_client(ScriptedServer([]))
    assert client.resolve(url) == urljoin(BASE + "/", url)


async def test_successful_calls_build_no_log_line_unless_debug_is_on(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server = ScriptedServer([httpx.Response(503)], then=OK)
    caplog.set_level(logging.INFO, logger="healthy_homes.fhir")
    async with make_client(server) as client:
        await client.request("GET", "Condition")
    records = [r for r in caplog.records if r.name == "healthy_homes.fhir.client"]
    # The failed attempt is told at INFO; the success would only be told at DEBUG.
    assert [(r.levelno, r.status) for r in records] == [(logging.INFO, "503")]  # type: ignore[attr-defined]


async def test_a_search_with_its_query_already_encoded_sends_it_as_it_is(
    make_client: MakeClient,
) -> None:
    server = ScriptedServer([], then=OK)
    async with make_client(server) as client:
        pages = [p async for p in client.search_pages("Patient", query="_id=a,b%26c&_count=2")]
    assert len(pages) == 1
    [request] = server.requests
    assert request.url.path == "/fhir/Patient"
    assert request.url.query == b"_id=a,b%26c&_count=2"
    assert request.url.params.get_list("_id") == ["a,b&c"]
