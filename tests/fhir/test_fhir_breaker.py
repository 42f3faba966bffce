"""Circuit breaker: open after N failures, nothing sent while open, half-open probe."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.errors import CircuitOpenError, FhirStatusError, FhirTransportError
from healthy_homes.fhir.breaker import BreakerState, CircuitBreaker
from healthy_homes.fhir.retry import RetryPolicy
from tests.fhir.fhir_fakes import MakeClient, ScriptedServer, bundle

DOWN = httpx.Response(503, json={"resourceType": "OperationOutcome", "issue": []})
UP = httpx.Response(200, json=bundle())
ONE_TRY = RetryPolicy(max_attempts=1, breaker_threshold=3, breaker_cooldown=30)


async def test_breaker_opens_after_threshold_and_sends_nothing_while_open(
    make_client: MakeClient,
) -> None:
    server = ScriptedServer([], then=DOWN)
    async with make_client(server, ONE_TRY) as client:
        for _ in range(3):
            with pytest.raises(FhirStatusError):
                await client.request("GET", "metadata")
        assert client.breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError) as caught:
            await client.request("GET", "metadata")
    assert len(server.requests) == 3  # the fourth call never reached the server
    assert isinstance(caught.value, FhirTransportError)
    assert caught.value.retry_after == 30.0
    assert "circuit open" in str(caught.value)


async def test_half_open_probe_failure_reopens_and_success_closes(
    make_client: MakeClient, clock: FixedClock
) -> None:
    server = ScriptedServer([DOWN, DOWN, DOWN, DOWN], then=UP)
    async with make_client(server, ONE_TRY) as client:
        for _ in range(3):
            with pytest.raises(FhirStatusError):
                await client.request("GET", "metadata")
        clock.advance(timedelta(seconds=29))
        with pytest.raises(CircuitOpenError):
            await client.request("GET", "metadata")
        clock.advance(timedelta(seconds=1))
        assert client.breaker.state is BreakerState.HALF_OPEN
        with pytest.raises(FhirStatusError):  # the probe goes out, and fails
            await client.request("GET", "metadata")
        assert client.breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.request("GET", "metadata")
        clock.advance(timedelta(seconds=30))
        await client.request("GET", "metadata")  # probe succeeds
        assert client.breaker.state is BreakerState.CLOSED
        await client.request("GET", "metadata")
    assert len(server.requests) == 6


async def test_breaker_stops_retries_mid_call(make_client: MakeClient) -> None:
    policy = RetryPolicy(max_attempts=5, breaker_threshold=2)
    server = ScriptedServer([], then=DOWN)
    async with make_client(server, policy) as client:
        with pytest.raises(CircuitOpenError):
            await client.request("GET", "metadata")
    assert len(server.requests) == 2


async def test_refusals_do_not_count_as_failures(make_client: MakeClient) -> None:
    not_found = httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})
    server = ScriptedServer([], then=not_found)
    async with make_client(server, ONE_TRY) as client:
        for _ in range(5):
            with pytest.raises(FhirStatusError):
                await client.read("Patient", "gone")
        assert client.breaker.state is BreakerState.CLOSED


async def test_success_resets_the_count(make_client: MakeClient) -> None:
    server = ScriptedServer([DOWN, DOWN, UP, DOWN, DOWN], then=UP)
    async with make_client(server, ONE_TRY) as client:
        for _ in range(5):
            with contextlib.suppress(FhirStatusError):
                await client.request("GET", "metadata")
        assert client.breaker.state is BreakerState.CLOSED


def test_half_open_lets_one_probe_through_at_a_time(clock: FixedClock) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=timedelta(seconds=10), clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.advance(timedelta(seconds=10))
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller while the probe is out
    breaker.release()  # the probe was cancelled without a verdict
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
