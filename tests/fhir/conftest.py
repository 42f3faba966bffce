"""Fixtures for FHIR client tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from tests.fhir.fhir_fakes import BASE, MakeClient, ScriptedServer, SleepRecorder


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(clock: FixedClock, sleeps: SleepRecorder) -> MakeClient:
    def make(server: ScriptedServer, policy: RetryPolicy | None = None, **kw: object) -> FhirClient:
        return FhirClient(
            BASE,
            practice="A12345",
            transport=httpx.MockTransport(server),
            policy=policy or RetryPolicy(max_attempts=4, breaker_threshold=50),
            clock=clock,
            sleep=sleeps,
            rng=random.Random(7),
            **kw,  # type: ignore[arg-type]
        )

    return make
