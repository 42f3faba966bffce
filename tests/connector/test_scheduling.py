"""Scheduling: one run per practice at a time; a dead endpoint delays nobody else."""

from __future__ import annotations

import asyncio
import socket
from datetime import time

import httpx

from healthy_homes.clock import FixedClock
from healthy_homes.connector.scheduler import build_scheduler, drain, serve
from healthy_homes.connector.service import ConnectorService
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.generator import seed_store
from healthy_homes.mock_server.store import MockStore
from healthy_homes.store.db import Database
from tests.connector.helpers import NOW, SEEDED, TODAY, practice, settings


class Gate:
    """ASGI wrapper around the mock server that holds Condition searches until opened."""

    def __init__(self, app) -> None:
        self.app = app
        self.open = asyncio.Event()
        self.held = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/fhir/Condition"):
            self.held += 1
            await self.open.wait()
        await self.app(scope, receive, send)


def _practice_app(seed: int = 7):
    store = MockStore(FixedClock(SEEDED))
    seed_store(store, 150, seed, TODAY)
    store.clock = FixedClock(NOW)
    return create_app(store)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


async def _until(predicate) -> None:
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def _overlapping(events: list[tuple[str, str, str]], ods: str) -> bool:
    running = 0
    for event, who, _ in events:
        if who != ods:
            continue
        running += {"start": 1, "end": -1}.get(event, 0)
        if running > 1:
            return True
    return False


async def test_never_two_runs_of_one_practice_at_once(db: Database) -> None:
    gate = Gate(_practice_app())
    config = settings(db, practice("http://practice-a.test/fhir"))
    async with ConnectorService(
        config, db, FixedClock(NOW), transport_for=lambda _: httpx.ASGITransport(gate)
    ) as service:
        first = asyncio.create_task(service.run("A12345", "full"))
        await _until(lambda: gate.held > 0)
        busy_incremental = await service.run("A12345", "auto")
        busy_watch = await service.run("A12345", "appointments")
        second_full = asyncio.create_task(service.run("A12345", "full"))
        await asyncio.sleep(0)
        assert busy_incremental.skipped and busy_watch.skipped
        assert not second_full.done()
        assert [e for e in service.events if e[0] == "start"] == [("start", "A12345", "full")]
        gate.open.set()
        results = await asyncio.gather(first, second_full)
    assert all(r.error is None for r in results)
    assert [e[0] for e in service.events] == ["start", "skip", "skip", "end", "start", "end"]
    assert len(service.events) <= 1000  # bounded: serve runs for months
    assert not _overlapping(service.events, "A12345")


async def test_a_practice_whose_endpoint_is_down_does_not_delay_the_others(db: Database) -> None:
    healthy = _practice_app()
    release = asyncio.Event()
    backoffs: list[float] = []

    async def held_backoff(seconds: float) -> None:
        # The down practice sits in its retry backoff until the test lets it go on.
        backoffs.append(seconds)
        await release.wait()

    config = settings(
        db,
        practice("http://practice-a.test/fhir", ods="A11111"),
        practice(f"http://127.0.0.1:{_closed_port()}/fhir", ods="B22222"),
        practice("http://practice-c.test/fhir", ods="C33333"),
        max_concurrent_practices=3,
    )
    transports = {
        "A11111": httpx.ASGITransport(healthy),
        "C33333": httpx.ASGITransport(_practice_app(seed=9)),
    }
    async with ConnectorService(
        config, db, FixedClock(NOW), transport_for=transports.get, sleep=held_backoff
    ) as service:
        everyone = asyncio.create_task(service.run_all("auto"))
        await _until(lambda: backoffs and ("end", "A11111", "auto") in service.events)
        await _until(lambda: ("end", "C33333", "auto") in service.events)
        assert ("end", "B22222", "auto") not in service.events  # still retrying
        release.set()
        report = await everyone
    by_ods = {run.practice: run for run in report.practices}
    assert by_ods["A11111"].error is None and by_ods["C33333"].error is None
    assert by_ods["A11111"].sync is not None and by_ods["A11111"].sync.patients > 0
    assert by_ods["B22222"].error is not None and "B22222" in by_ods["B22222"].error
    ends = [who for event, who, _ in service.events if event == "end"]
    assert ends.index("B22222") > max(ends.index("A11111"), ends.index("C33333"))


async def test_a_practice_over_its_time_limit_is_stopped_alone(db: Database) -> None:
    never = asyncio.Event()

    async def stuck(_: float) -> None:
        await never.wait()

    config = settings(
        db,
        practice("http://practice-a.test/fhir", ods="A11111"),
        practice(f"http://127.0.0.1:{_closed_port()}/fhir", ods="B22222", timeout_seconds=0.05),
    )
    async with ConnectorService(
        config,
        db,
        FixedClock(NOW),
        transport_for=lambda ods: httpx.ASGITransport(_practice_app()) if ods == "A11111" else None,
        sleep=stuck,
    ) as service:
        report = await service.run_all("auto")
    by_ods = {run.practice: run for run in report.practices}
    assert by_ods["A11111"].error is None
    assert by_ods["B22222"].error == "run took longer than 0.05 s"


async def test_scheduler_jobs_and_graceful_shutdown(db: Database) -> None:
    gate = Gate(_practice_app())
    config = settings(
        db,
        practice("http://practice-a.test/fhir"),
        incremental_minutes=3,
        appointment_seconds=45,
        reconcile_at=time(1, 15),
    )
    async with ConnectorService(
        config, db, FixedClock(NOW), transport_for=lambda _: httpx.ASGITransport(gate)
    ) as service:
        scheduler = build_scheduler(service)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {
            "A12345:incremental",
            "A12345:appointments",
            "A12345:reconcile",
            "retention:purge",
        }
        for job in jobs.values():
            assert job.max_instances == 1 and job.coalesce
        assert jobs["A12345:incremental"].trigger.interval.total_seconds() == 180
        assert jobs["A12345:appointments"].trigger.interval.total_seconds() == 45
        assert "hour='1'" in str(jobs["A12345:reconcile"].trigger)
        assert "minute='15'" in str(jobs["A12345:reconcile"].trigger)
        assert jobs["A12345:incremental"].args == ("A12345", "auto")

        # Stopping waits for a run in progress, and cancels it only after the grace period.
        running = asyncio.create_task(service.run("A12345", "full"))
        await _until(lambda: gate.held > 0)
        assert await drain(service, grace=0) == 1
        assert running.cancelled() or running.done()
        assert not service.active

        stop = asyncio.Event()
        stop.set()
        await serve(service, stop, grace=1)
        assert not service.active


async def test_a_practice_with_broken_credentials_fails_alone(db: Database, tmp_path) -> None:
    broken = practice(
        "http://practice-b.test/fhir",
        ods="B22222",
        auth={
            "kind": "smart",
            "client_id": "hh",
            "token_url": "http://practice-b.test/token",
            "private_key_file": str(tmp_path / "missing.pem"),
        },
    )
    config = settings(db, practice("http://practice-a.test/fhir", ods="A11111"), broken)
    async with ConnectorService(
        config, db, FixedClock(NOW), transport_for=lambda _: httpx.ASGITransport(_practice_app())
    ) as service:
        report = await service.run_all("auto")
    by_ods = {run.practice: run for run in report.practices}
    assert by_ods["A11111"].error is None and by_ods["A11111"].sync is not None
    assert "cannot read private key file" in (by_ods["B22222"].error or "")
