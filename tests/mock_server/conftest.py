"""Fixtures for the mock server's own tests: an in-process app over a seeded store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.generator import seed_store
from healthy_homes.mock_server.store import MockStore

TODAY = date(2026, 3, 2)
BASE = "http://mock.test/fhir"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(clock: FixedClock) -> MockStore:
    return MockStore(clock)


@pytest.fixture(scope="session")
def practice_resources() -> list[dict]:
    from healthy_homes.mock_server.generator import generate_practice

    return list(generate_practice(300, 7, TODAY))


@pytest.fixture
def seeded(store: MockStore) -> MockStore:
    seed_store(store, 300, 7, TODAY)
    return store


@pytest.fixture
async def client(store: MockStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE + "/") as c:
        yield c


@pytest.fixture
async def seeded_client(seeded: MockStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(seeded)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE + "/") as c:
        yield c
