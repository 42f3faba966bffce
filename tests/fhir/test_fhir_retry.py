"""Retries: what is retried, how long we wait, and when we give up."""

from __future__ import annotations

import random
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.errors import FhirResponseError, FhirStatusError, FhirTransportError
from healthy_homes.fhir.retry import RetryPolicy, backoff_delay, is_idempotent
from tests.fhir.fhir_fakes import MakeClient, ScriptedServer, SleepRecorder, bundle

OK = httpx.Response(200, json=bundle())


def fail(status: int, **headers: str) -> httpx.Response:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    return httpx.Response(status, json=outcome, headers=headers)


RETRYABLE: dict[str, httpx.Response | Exception] = {
    "408": fail(408),
    "429": fail(429),
    "500": fail(500),
    "502": fail(502),
    "503": fail(503),
    "504": fail(504),
    "connect refused": httpx.ConnectError("refused"),
    "connection reset": httpx.ReadError("reset by peer"),
    "cut off mid-answer": httpx.RemoteProtocolError("peer closed connection"),
    "read timeout": httpx.ReadTimeout("slow"),
    "truncated page": httpx.Response(200, content=b'{"resourceType": "Bundle", "ent'),
    "not json": httpx.Response(200, content=b"<html>gateway</html>"),
}


@pytest.mark.parametrize("failure", list(RETRYABLE.values()), ids=list(RETRYABLE))
async def test_each_retryable_failure_is_retried_on_get(
    make_client: MakeClient, sleeps: SleepRecorder, failure: httpx.Response | Exception
) -> None:
    server = ScriptedServer([failure, failure], then=OK)
    async with make_client(server) as client:
        body = await client.request_json("GET", "Condition", expect="Bundle")
    assert body["resourceType"] == "Bundle"
    assert len(server.requests) == 3
    assert len(sleeps.calls) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 422])
async def test_non_retryable_status_fails_at_once(
    make_client: MakeClient, sleeps: SleepRecorder, status: int
) -> None:
    server = ScriptedServer([fail(status)])
    async with make_client(server) as client:
        with pytest.raises(FhirStatusError) as caught:
            await client.read("Patient", "p1")
    assert caught.value.status_code == status
    assert not caught.value.retryable
    assert len(server.requests) == 1
    assert sleeps.calls == []


async def test_attempts_are_capped_and_the_last_error_is_raised(
    make_client: MakeClient, sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=5, backoff_base=0.5, backoff_cap=3.0, breaker_threshold=50)
    server = ScriptedServer([], then=fail(503))
    async with make_client(server, policy) as client:
        with pytest.raises(FhirStatusError) as caught:
            await client.read("Patient", "p1")
    assert caught.value.status_code == 503
    assert len(server.requests) == 5
    # Full jitter: each wait is drawn from [0, min(cap, base * 2**(n-1))] with the seeded rng.
    replay = random.Random(7)
    expected = [replay.uniform(0, min(3.0, 0.5 * 2**n)) for n in range(4)]
    assert sleeps.calls == pytest.approx(expected)
    assert all(0 <= s <= c for s, c in zip(sleeps.calls, [0.5, 1.0, 2.0, 3.0], strict=True))


def test_backoff_ceiling_grows_then_stops_at_the_cap() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=8.0)

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    waits = [backoff_delay(policy, n, Top()) for n in range(1, 7)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_retry_after_seconds_is_honoured(
    make_client: MakeClient, sleeps: SleepRecorder
) -> None:
    server = ScriptedServer([fail(429, **{"Retry-After": "7"}), fail(503, **{"Retry-After": "2"})])
    async with make_client(server) as client:
        await client.request("GET", "Condition")
    assert sleeps.calls == [7.0, 2.0]


async def test_retry_after_http_date_is_measured_on_the_clock(
    make_client: MakeClient, sleeps: SleepRecorder, clock: FixedClock
) -> None:
    when = format_datetime(clock.now() + timedelta(seconds=12), usegmt=True)
    server = ScriptedServer([fail(503, **{"Retry-After": when})])
    async with make_client(server) as client:
        await client.request("GET", "metadata")
    assert sleeps.calls == [12.0]


async def test_retry_after_is_capped(make_client: MakeClient, sleeps: SleepRecorder) -> None:
    policy = RetryPolicy(retry_after_cap=20.0, breaker_threshold=50)
    server = ScriptedServer([fail(429, **{"Retry-After": "86400"})])
    async with make_client(server, policy) as client:
        await client.request("GET", "metadata")
    assert sleeps.calls == [20.0]


async def test_plain_post_is_not_retried_after_an_ambiguous_failure(
    make_client: MakeClient, sleeps: SleepRecorder
) -> None:
    server = ScriptedServer([fail(503), httpx.ReadTimeout("slow")])
    flag = {"resourceType": "Flag", "status": "active"}
    async with make_client(server) as client:
        with pytest.raises(FhirStatusError):
            await client.create(flag)
        with pytest.raises(FhirTransportError):
            await client.create(flag)
    assert len(server.requests) == 2
    assert sleeps.calls == []


@pytest.mark.parametrize(
    "failure",
    [fail(429), httpx.ConnectError("refused")],
    ids=["429 (not processed)", "connect refused (never sent)"],
)
async def test_plain_post_is_retried_when_the_server_certainly_did_not_act(
    make_client: MakeClient, failure: httpx.Response | Exception
) -> None:
    flag = {"resourceType": "Flag", "status": "active"}
    server = ScriptedServer([failure], then=httpx.Response(201, json=flag))
    async with make_client(server) as client:
        created = await client.create(flag)
    assert created["resourceType"] == "Flag"
    assert len(server.requests) == 2


async def test_conditional_create_is_retried(make_client: MakeClient) -> None:
    flag = {"resourceType": "Flag", "status": "active"}
    server = ScriptedServer([fail(502), fail(504)], then=httpx.Response(200, json=flag))
    async with make_client(server) as client:
        await client.create(flag, if_none_exist="identifier=https://hh.example|f1")
    assert len(server.requests) == 3
    assert all(r.headers["If-None-Exist"] for r in server.requests)


async def test_put_is_retried_and_sends_the_same_body(make_client: MakeClient) -> None:
    flag = {"resourceType": "Flag", "id": "f1", "status": "inactive"}
    server = ScriptedServer([httpx.ReadError("reset")], then=httpx.Response(200, json=flag))
    async with make_client(server) as client:
        await client.update(flag, if_match='W/"2"')
    assert [r.method for r in server.requests] == ["PUT", "PUT"]
    assert server.requests[0].content == server.requests[1].content


async def test_garbled_answer_to_a_write_is_not_resent(make_client: MakeClient) -> None:
    flag = {"resourceType": "Flag", "id": "f1", "status": "inactive"}
    server = ScriptedServer([httpx.Response(200, content=b'{"resourceT')])
    async with make_client(server) as client:
        with pytest.raises(FhirResponseError):
            await client.update(flag)
    assert len(server.requests) == 1


def _transaction(*requests: dict[str, str]) -> dict[str, object]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Flag"}, "request": r} for r in requests],
    }


async def test_all_conditional_transaction_is_retried(make_client: MakeClient) -> None:
    bundle_in = _transaction(
        {"method": "POST", "url": "Flag", "ifNoneExist": "identifier=https://hh.example|f1"},
        {"method": "PUT", "url": "Flag/f2"},
    )
    server = ScriptedServer([fail(500)], then=httpx.Response(200, json=bundle()))
    async with make_client(server) as client:
        await client.transaction(bundle_in)
    assert len(server.requests) == 2


async def test_transaction_with_a_plain_create_is_not_retried(make_client: MakeClient) -> None:
    bundle_in = _transaction({"method": "PUT", "url": "Flag/f2"}, {"method": "POST", "url": "Flag"})
    server = ScriptedServer([fail(500)])
    async with make_client(server) as client:
        with pytest.raises(FhirStatusError):
            await client.transaction(bundle_in)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "expected"),
    [
        ("GET", "Patient", {}, None, True),
        ("PUT", "Flag/1", {}, None, True),
        ("POST", "Patient/_search", {}, None, True),
        ("POST", "Flag", {"if-none-exist": "identifier=x|1"}, None, True),
        ("POST", "Flag", {}, None, False),
        ("DELETE", "Flag/1", {}, None, False),
        ("PATCH", "Flag/1", {}, None, False),
        ("POST", "", {}, {"resourceType": "Bundle", "type": "transaction", "entry": []}, False),
        ("POST", "", {}, {"resourceType": "Bundle", "type": "message", "entry": [{}]}, False),
    ],
)
def test_idempotency_rule(
    method: str, url: str, headers: dict[str, str], body: dict[str, object] | None, expected: bool
) -> None:
    assert is_idempotent(method, url, headers, body) is expected


async def test_caller_can_declare_a_post_idempotent(make_client: MakeClient) -> None:
    message = {"resourceType": "Bundle", "type": "message"}
    server = ScriptedServer([fail(503)], then=httpx.Response(200, json=message))
    async with make_client(server) as client:
        await client.request_json("POST", "$process-message", json_body=message, idempotent=True)
    assert len(server.requests) == 2
