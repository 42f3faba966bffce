"""How many requests a register sync sends: an incremental poll is one search for all registers.

Counted on the wire with a transport that records every request the connector sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import PracticeConfig, RegisterConfig, Settings
from healthy_homes.connector.condition_source import code_tokens, register_codes
from healthy_homes.connector.context import PracticeContext, practice_client
from healthy_homes.connector.practice_sync import sync_registers
from healthy_homes.connector.reports import Mode, SyncReport
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.registers.definitions import resolve_registers
from healthy_homes.store.db import Database
from tests.connector.helpers import (
    NOW,
    condition,
    live_patient,
    memberships,
    practice,
    practice_server,
    rest,
    settings,
)

pytestmark = pytest.mark.e2e


class Recording(httpx.AsyncBaseTransport):
    """Loopback HTTP that remembers each request's method, resource type and query."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[tuple[str, str, dict[str, list[str]]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rsplit("/fhir/", 1)[-1]
        self.sent.append((request.method, path, parse_qs(request.url.query.decode())))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _sync(
    db: Database, config: Settings, mode: Mode = "auto", hours: float = 0
) -> tuple[SyncReport, Recording]:
    async def run() -> SyncReport:
        clock = FixedClock(NOW + timedelta(hours=hours))
        async with practice_client(config.practices[0], wire, clock=clock) as client:
            ctx = PracticeContext.build(config, config.practices[0], client, db, clock)
            return await sync_registers(ctx, mode)

    wire = Recording()
    return asyncio.run(run()), wire


def _codes(query: dict[str, list[str]]) -> set[str]:
    return {c for token in query.get("code", []) for c in token.split(",")}


def _all_codes(config: Settings) -> set[str]:
    return {
        f"{s}|{c}"
        for r in resolve_registers(config, config.practices[0])
        for s, c in register_codes(r)
    }


@pytest.fixture
def server() -> Iterator[RunningMockServer]:
    running = practice_server(patients=300, seed=7)
    yield running
    running.stop()


def test_a_poll_without_changes_is_one_search_for_all_registers_and_the_patient_poll(
    db: Database, server: RunningMockServer
) -> None:
    config = settings(db, practice(server), page_size=50)
    first, _ = _sync(db, config)
    assert set(first.read_mode.values()) == {"full"} and len(first.read_mode) == 4

    report, wire = _sync(db, config, hours=1)

    assert set(report.read_mode.values()) == {"incremental"} and len(report.read_mode) == 4
    assert [(method, path) for method, path, _ in wire.sent] == [
        ("GET", "Condition"),
        ("GET", "Patient"),
    ]
    conditions, patients = wire.sent[0][2], wire.sent[1][2]
    assert _codes(conditions) == _all_codes(config)  # every register's codes, one search
    assert conditions["_lastUpdated"][0].startswith("ge")
    assert patients["_lastUpdated"][0].startswith("ge")
    assert report.conditions_scanned == 0


def test_changes_between_polls_are_found_by_the_combined_search(
    db: Database, server: RunningMockServer
) -> None:
    config = settings(db, practice(server), page_size=50)
    _sync(db, config)
    before = {(r, p) for r, p, _ in memberships(db)}
    copd = {p for r, p in before if r == "copd"}
    asthma = {p for r, p in before if r == "asthma"}
    newcomer = live_patient(server, not_in=copd | asthma)
    dying = sorted(asthma - copd)[0]
    with rest(server) as http:
        # One patient gains COPD (a descendant concept) and asthma; another dies.
        http.post("Condition", json=condition(newcomer["id"], "185086009")).raise_for_status()
        http.post("Condition", json=condition(newcomer["id"], "195967001")).raise_for_status()
        patient = http.get(f"Patient/{dying}").json()
        patient["deceasedDateTime"] = "2026-11-23T14:00:00Z"
        http.put(f"Patient/{dying}", json=patient).raise_for_status()

    report, wire = _sync(db, config, hours=1)

    after = {(r, p) for r, p, _ in memberships(db)}
    assert after == (before | {("copd", newcomer["id"]), ("asthma", newcomer["id"])}) - {
        (r, p) for r, p in before if p == dying
    }
    assert report.conditions_scanned == 2  # each new Condition counted for its own register
    searches = [(m, path) for m, path, q in wire.sent if "_lastUpdated" in q]
    assert searches == [("GET", "Condition"), ("GET", "Patient")]
    # Besides: the newcomer's status, looked up once although two registers found them.
    lookups = [q for m, path, q in wire.sent if path == "Patient" and "_id" in q]
    assert [q["_id"] for q in lookups] == [[newcomer["id"]]]


def test_a_register_due_a_full_read_is_read_alone_and_the_others_together(
    db: Database, server: RunningMockServer
) -> None:
    config = settings(db, practice(server), page_size=50)
    _sync(db, config)
    # The practice changes the falls register's rules: its old watermark means nothing now.
    falls_rules = RegisterConfig(name="falls", codeset="falls", clinical_statuses=["active"])
    changed = config.model_copy(update={"registers": [*config.registers, falls_rules]})
    report, wire = _sync(db, changed, hours=1)

    assert report.read_mode == {
        "copd": "incremental",
        "asthma": "incremental",
        "falls": "full",
        "high_risk": "incremental",
    }
    incremental = [q for m, path, q in wire.sent if path == "Condition" and "_lastUpdated" in q]
    [falls] = [r for r in resolve_registers(changed, changed.practices[0]) if r.name == "falls"]
    assert len(incremental) == 1
    assert _codes(incremental[0]) == _all_codes(changed) - {
        f"{s}|{c}" for s, c in register_codes(falls)
    }


def test_codes_are_split_into_bounded_tokens_no_more_than_registers_alone_would_need() -> None:
    practice_config = PracticeConfig.model_validate(
        {"ods_code": "A12345", "name": "Surgery", "fhir_base_url": "http://gp.example/fhir"}
    )
    registers = resolve_registers(Settings(), practice_config)
    codes = frozenset().union(*(register_codes(r) for r in registers))
    assert code_tokens(codes) == [",".join(sorted(f"{s}|{c}" for s, c in codes))]
    small = code_tokens(codes, max_chars=200)
    assert all(len(token) <= 200 for token in small)
    assert {c for token in small for c in token.split(",")} == {f"{s}|{c}" for s, c in codes}
    assert len(small) <= sum(len(r.search_tokens(max_chars=200)) for r in registers)
