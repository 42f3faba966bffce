"""Fault injection: each fault, seen by a client, at its configured rate.

Tolerance: the count of faulted requests out of N is Binomial(N, rate); every rate
check allows 4 standard deviations, sqrt(N * rate * (1 - rate)), around N * rate
(a correct injector fails it about once in 16,000 seeds). The seeds are fixed, so
each run sees the same sequence and the tests are deterministic.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from healthy_homes.errors import ConfigError
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.fault_rules import FaultConfig, config_from_cli, parse_rule
from healthy_homes.mock_server.faults import FaultInjector, injector_of
from healthy_homes.mock_server.store import MockStore
from healthy_homes.serving import ServerThread

BASE = "http://mock.test/fhir"
N = 300


def within_tolerance(observed: int, n: int, rate: float) -> bool:
    """Binomial 4-sigma check."""
    sigma = math.sqrt(n * rate * (1 - rate))
    return abs(observed - n * rate) <= 4 * sigma


def _condition(i: int) -> dict:
    return {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "13645005"}]},
        "subject": {"reference": f"Patient/p{i}"},
    }


def _app(*rules: str, seed: int = 0, sleep=None) -> FastAPI:
    store = MockStore()
    for i in range(40):
        store.create(_condition(i))
    config = FaultConfig(seed=seed, rules=[parse_rule(r) for r in rules])
    injector = FaultInjector(config) if sleep is None else FaultInjector(config, sleep=sleep)
    return create_app(store, extensions=[injector])


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE + "/") as c:
        yield c


async def _outcomes(app: FastAPI, n: int = N) -> list[str]:
    """What a client sees for each of n searches: a status, 'bad-json' or an error name."""
    seen = []
    async for client in _client(app):
        for _ in range(n):
            try:
                r = await client.get("Condition", params={"_count": 2})
            except httpx.TransportError as exc:
                seen.append(type(exc).__name__)
                continue
            try:
                r.json()
            except ValueError:
                seen.append(f"{r.status_code}-bad-json")
                continue
            seen.append(str(r.status_code))
    return seen


@pytest.mark.parametrize(
    ("rule", "fault_seen", "rate"),
    [
        ("Condition:status=429,rate=0.2", "429", 0.2),
        ("Condition:status=500,rate=0.1", "500", 0.1),
        ("Condition:status=503,rate=0.3", "503", 0.3),
        ("Condition:truncate,rate=0.25", "200-bad-json", 0.25),
        ("Condition:malformed,rate=0.15", "200-bad-json", 0.15),
        ("Condition:reset,rate=0.2", "ReadError", 0.2),  # in process: see faults.py
    ],
)
async def test_each_fault_is_seen_at_its_rate(rule: str, fault_seen: str, rate: float) -> None:
    app = _app(rule, seed=11)
    seen = await _outcomes(app)
    faulted = seen.count(fault_seen)
    assert set(seen) == {"200", fault_seen}
    assert within_tolerance(faulted, N, rate), (faulted, N * rate)
    report = injector_of(app).report()["rules"][0]
    assert (report["matched"], report["fired"]) == (N, faulted)


async def test_status_faults_carry_retry_after_and_an_operation_outcome() -> None:
    app = _app("Condition:status=429", "Patient:status=503,retry-after=7")
    async for client in _client(app):
        r = await client.get("Condition")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["issue"][0]["code"] == "throttled"
        r = await client.get("Patient/x")
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
        assert r.json()["resourceType"] == "OperationOutcome"


async def test_truncated_and_malformed_bodies() -> None:
    async for client in _client(_app("Condition:truncate")):
        r = await client.get("Condition")
        whole = len(r.content) * 2
        assert int(r.headers["content-length"]) == len(r.content) and whole > 100
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
    async for client in _client(_app("Condition:malformed")):
        r = await client.get("Condition")
        assert r.content.endswith(b",}")
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
        # Everything before the stray comma is the real Bundle.
        assert json.loads(r.content[:-2] + b"}")["type"] == "searchset"


async def test_latency_is_added_at_its_rate_without_sleeping() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    app = _app("*:latency=250,rate=0.4", "Condition:latency=50", seed=3, sleep=fake_sleep)
    seen = await _outcomes(app)
    assert set(seen) == {"200"}
    # Every request gets 50 ms; those the first rule hits get 250 ms more.
    assert set(slept) == {0.05, 0.3}
    assert len(slept) == N
    assert within_tolerance(slept.count(0.3), N, 0.4)


async def test_real_latency_is_measured_by_the_client() -> None:
    app = _app("Condition:latency=5")
    async for client in _client(app):
        started = time.perf_counter()
        for _ in range(20):
            assert (await client.get("Condition")).status_code == 200
        # A lower bound only: the delay happened; how fast the rest is is not asserted.
        assert time.perf_counter() - started >= 20 * 0.005


async def _page_through(client: httpx.AsyncClient) -> list[list[str]]:
    pages = []
    url: str | None = f"{BASE}/Condition?_count=4"
    while url:
        bundle = (await client.get(url)).json()
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        url = next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None)
    return pages


async def test_duplicate_entries_across_pages_at_their_rate() -> None:
    app = _app("Condition:duplicate=2,rate=0.3", seed=5)
    later_pages = repeated = 0
    async for client in _client(app):
        for _ in range(25):  # 25 pagings of 10 pages: 225 next pages
            pages = await _page_through(client)
            assert len(pages) == 10
            for before, page in itertools.pairwise(pages):
                later_pages += 1
                if page[:2] == before[-2:]:
                    repeated += 1
                    assert len(page) == 6  # two repeats, then the four real entries
                else:
                    assert not set(page) & set(before)
    assert later_pages == 225
    assert within_tolerance(repeated, later_pages, 0.3), repeated
    assert injector_of(app).report()["rules"][0]["fired"] == repeated


async def test_same_seed_same_faults_other_seed_other_faults() -> None:
    rules = ("Condition:status=503,rate=0.3", "Condition:truncate,rate=0.2")
    first = await _outcomes(_app(*rules, seed=42), 200)
    again = await _outcomes(_app(*rules, seed=42), 200)
    other = await _outcomes(_app(*rules, seed=43), 200)
    assert first == again
    assert first != other
    # Configuring again restarts the sequence.
    app = _app(*rules, seed=42)
    await _outcomes(app, 50)
    injector_of(app).configure(injector_of(app).config)
    assert await _outcomes(app, 200) == first


def test_connection_reset_over_a_real_socket() -> None:
    app = _app("Condition:reset,rate=0.2", seed=9)
    seen = []
    with ServerThread(app) as url, httpx.Client(base_url=f"{url}/fhir/", timeout=5) as client:
        for _ in range(200):
            try:
                seen.append(client.get("Condition", params={"_count": 1}).status_code)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # A TCP RST: ReadError (ECONNRESET) or, if read as EOF, RemoteProtocolError.
                seen.append(0)
    resets = seen.count(0)
    assert set(seen) == {200, 0}
    assert within_tolerance(resets, 200, 0.2), resets
    assert injector_of(app).report()["rules"][0]["fired"] == resets


def test_reset_after_handling_loses_the_answer_not_the_write() -> None:
    app = _app("/fhir/Condition:reset,after,method=POST")
    store: MockStore = app.state.store
    before = store.count("Condition")
    with ServerThread(app) as url, httpx.Client(base_url=f"{url}/fhir/", timeout=5) as client:
        with pytest.raises(httpx.TransportError):
            client.post("Condition", json=_condition(99))
        assert client.get("Condition", params={"_count": 1}).status_code == 200
    assert store.count("Condition") == before + 1


async def test_a_base_path_rule_matches_with_or_without_the_trailing_slash() -> None:
    app = _app("/fhir:status=503,method=POST")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    async for client in _client(app):
        assert (await client.post("", json=bundle)).status_code == 503  # .../fhir/
        assert (await client.post(BASE, json=bundle)).status_code == 503
        assert (await client.post("Condition", json=_condition(1))).status_code == 201


async def test_rules_match_by_type_path_and_method() -> None:
    app = _app("Condition:status=500,method=POST", "/fhir/Patient/*:status=503")
    async for client in _client(app):
        assert (await client.get("Condition")).status_code == 200
        assert (await client.post("Condition", json=_condition(1))).status_code == 500
        assert (await client.get("Patient")).status_code == 200
        assert (await client.get("Patient/abc")).status_code == 503
        assert (await client.get("metadata")).status_code == 200


async def test_admin_endpoint_sets_reads_and_clears_faults() -> None:
    app = _app()
    async for client in _client(app):
        assert (await client.get("Condition")).status_code == 200
        body = {"seed": 4, "rules": ["*:status=503", {"match": "Patient", "kind": "reset"}]}
        r = await client.put("http://mock.test/admin/faults", json=body)
        assert r.status_code == 200
        assert [rule["kind"] for rule in r.json()["rules"]] == ["status", "reset"]
        assert (await client.get("Condition")).status_code == 503
        report = (await client.get("http://mock.test/admin/faults")).json()
        assert report["seed"] == 4 and report["rules"][0]["fired"] == 1
        r = await client.put("http://mock.test/admin/faults", json={"rules": ["*:explode"]})
        assert r.status_code == 400 and "unknown option" in r.text
        r = await client.delete("http://mock.test/admin/faults")
        assert r.json() == {"seed": 4, "rules": []}
        assert (await client.get("Condition")).status_code == 200


async def test_admin_paths_are_never_faulted() -> None:
    app = _app("/*:status=500")
    async for client in _client(app):
        assert (await client.get("Condition")).status_code == 500
        assert (await client.get("http://mock.test/admin/faults")).status_code == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Condition:status=503,rate=0.2", {"match": "Condition", "kind": "status", "rate": 0.2}),
        ("*:latency=150", {"match": "*", "kind": "latency", "latency_ms": 150}),
        ("Task:reset,after,method=post|put", {"kind": "reset", "after": True}),
        ("Condition:duplicate", {"kind": "duplicate", "duplicate": 1}),
        ("Patient:status=429,retry-after=3,seed=8", {"retry_after": 3, "seed": 8}),
    ],
)
def test_rule_syntax(text: str, expected: dict) -> None:
    rule = parse_rule(text)
    assert rule.model_dump(include=set(expected)) == expected
    if "method" in text:
        assert rule.method == ("POST", "PUT")


@pytest.mark.parametrize(
    "text",
    [
        "Condition",
        "Condition:rate=0.5",
        "Condition:status=503,latency=10",
        "Condition:status=503,rate=2",
        "Condition:status=200",
        "Condition:truncate,after",
        "Condition:latency",
        "Condition:bogus=1",
    ],
)
def test_rule_syntax_errors(text: str) -> None:
    with pytest.raises(ValueError, match="fault rule"):
        parse_rule(text)


def test_config_files_and_cli_flags_combine(tmp_path: Path) -> None:
    toml = tmp_path / "faults.toml"
    toml.write_text(
        'seed = 5\n[[rules]]\nmatch = "Condition"\nkind = "status"\n'
        '[[rules]]\nmatch = "Patient"\nkind = "latency"\nlatency_ms = 20\n'
    )
    config = config_from_cli(["*:reset,rate=0.1"], toml, None)
    assert config.seed == 5
    assert [r.kind for r in config.rules] == ["status", "latency", "reset"]
    as_json = tmp_path / "faults.json"
    as_json.write_text(json.dumps({"rules": [{"kind": "truncate"}, "Patient:duplicate=3"]}))
    assert config_from_cli([], as_json, 9).model_dump()["seed"] == 9
    as_json.write_text('{"rules": [{"kind": "explode"}]}')
    with pytest.raises(ConfigError):
        config_from_cli([], as_json, None)
    with pytest.raises(ConfigError):
        config_from_cli(["nonsense"], None, None)
