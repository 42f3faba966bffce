"""Status lookups: one search per hundred patients, built without letting an id rewrite it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from healthy_homes.connector.patients import fetch_statuses
from healthy_homes.fhir.client import FhirClient
from tests.connector.helpers import practice_server


def _statuses(base_url: str, patients: list[str]) -> dict[str, bool]:
    async def run() -> dict[str, bool]:
        async with FhirClient(base_url) as client:
            ctx: Any = SimpleNamespace(client=client)
            return await fetch_statuses(ctx, patients)

    return asyncio.run(run())


def test_a_stray_character_in_an_id_cannot_add_a_search_parameter() -> None:
    server = practice_server(patients=20, seed=3)
    try:
        # A broken subject reference whose "id" carries a query of its own.
        found = _statuses(server.base_url, ["pat-0000001", "x&_id=pat-0000002"])
    finally:
        server.stop()
    assert set(found) == {"pat-0000001"}


def test_statuses_come_back_for_every_patient_asked_about() -> None:
    server = practice_server(patients=250, seed=3)
    try:
        asked = [f"pat-{i:07d}" for i in range(1, 251)]  # three searches: 100, 100, 50
        found = _statuses(server.base_url, asked)
    finally:
        server.stop()
    assert set(found) == set(asked)
    assert any(found.values()) and all(isinstance(v, bool) for v in found.values())
