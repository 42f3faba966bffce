"""SQLite against PostgreSQL on the same workload; writes two sections of docs/benchmarks.md.

Run: ``python bench/store_bench.py [--patients 10000] [--referrals 2000] [--rounds 3]``
(PostgreSQL at $HEALTHY_HOMES_TEST_PG, default postgresql://postgres@127.0.0.1:5432/postgres;
a throwaway database is created and dropped).

The workload, run once per backend per round in the same process, alternating which
backend goes first: a full register sync of a practice of ``--patients`` (rows
inserted), the same full sync again (every row upserted, nothing new), flags raised
for up to 2,000 of its register patients (a FHIR read and a Flag write each), 2,000
referrals queued and delivered through the outbox by one worker to a mock housing
server, and the funnel report over the year (best of five). The mock practice runs in
a subprocess; the housing receiver in a thread of this process. Each figure is the
best of the rounds, and the ratio is PostgreSQL's time over SQLite's, measured in the
same run, so the machine's load affects both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from common import use_throwaway_keys, write_section

use_throwaway_keys()  # referral datasets are encrypted at rest

from sync_bench import MockServers, machine, ms, settings_for  # noqa: E402

from healthy_homes.clock import SystemClock  # noqa: E402
from healthy_homes.config.models import DeliveryConfig, FlagRulesConfig  # noqa: E402
from healthy_homes.connector.context import PracticeContext, practice_client  # noqa: E402
from healthy_homes.connector.delivery.worker import DeliveryWorker  # noqa: E402
from healthy_homes.connector.practice_sync import sync_registers  # noqa: E402
from healthy_homes.flags.lifecycle import raise_flags  # noqa: E402
from healthy_homes.mock_server.server import build_server  # noqa: E402
from healthy_homes.reporting.funnel import funnel  # noqa: E402
from healthy_homes.store.db import Database  # noqa: E402
from tests.delivery.seed import enqueue, service  # noqa: E402

PG_ADMIN = os.environ.get("HEALTHY_HOMES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STEPS = (
    ("sync", "Register sync, full, {patients:,} patients (rows inserted)"),
    ("resync", "The same full sync again (every row upserted)"),
    ("flags", "Flags raised ({flags:,}; FHIR read + Flag write each)"),
    ("outbox", "{referrals:,} referrals queued and delivered through the outbox"),
    ("funnel", "Funnel report over the year (best of 5)"),
)


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL database."""
    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    name = f"hh_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


async def _timed(step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def workload(
    db: Database, practice_url: str, housing_url: str, referrals: int
) -> dict[str, float]:
    """The five steps on one database; seconds each, and how many flags were raised."""
    settings = settings_for([practice_url], db.url)
    practice = settings.practices[0]
    clock = SystemClock()
    times: dict[str, float] = {}
    async with practice_client(practice, clock=clock) as client:
        ctx = PracticeContext.build(settings, practice, client, db, clock)
        times["sync"] = await _timed(lambda: sync_registers(ctx, "full"))
        times["resync"] = await _timed(lambda: sync_registers(ctx, "full"))
        rules = FlagRulesConfig(max_new_flags_per_day=2000, throttle_on_capacity=False)
        started = time.perf_counter()
        report = await raise_flags(db, client, practice.ods_code, ctx.registers, rules, clock)
        times["flags"] = time.perf_counter() - started
        times["flag_count"] = len(report.raised)
    worker = DeliveryWorker(db, [service(housing_url)], DeliveryConfig(), clock=clock)
    try:
        started = time.perf_counter()
        enqueue(db, referrals, datetime.now(UTC))
        stats = await worker.run_once()
        times["outbox"] = time.perf_counter() - started
        if stats.delivered != referrals:
            raise RuntimeError(f"delivered {stats.delivered} of {referrals}")
    finally:
        await worker.aclose()
    today = date.today()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        funnel(db, start=date(today.year - 1, today.month, 1), end=today)
        best = min(best, time.perf_counter() - started)
    times["funnel"] = best
    return times


def _run(url: str, practice_url: str, housing_url: str, referrals: int) -> dict[str, float]:
    db = Database(url)
    try:
        db.upgrade()
        return asyncio.run(workload(db, practice_url, housing_url, referrals))
    finally:
        db.dispose()


def postgres_version() -> str:
    """The server's version string, short."""
    with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def memory() -> str:
    """Total RAM."""
    found = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    return f"{int(found.group(1)) / 1024 / 1024:.1f} GiB" if found else "?"


def main() -> int:
    """Run both backends and write the sections."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--referrals", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load_start = load()
    started = time.perf_counter()
    servers = MockServers(1, args.patients)
    housing = build_server(mode="housing").start()
    best: dict[str, dict[str, float]] = {"sqlite": {}, "postgresql": {}}
    flags = 0
    try:
        for round_ in range(args.rounds):
            order = ["sqlite", "postgresql"] if round_ % 2 == 0 else ["postgresql", "sqlite"]
            for backend in order:
                with tempfile.TemporaryDirectory() as work, postgres() as pg:
                    url = f"sqlite:///{Path(work) / 'hh.db'}" if backend == "sqlite" else pg
                    times = _run(url, servers.url(0), housing.base_url, args.referrals)
                flags = int(times.pop("flag_count"))
                for step, seconds in times.items():
                    best[backend][step] = min(best[backend].get(step, seconds), seconds)
                print(backend, {k: round(v, 3) for k, v in times.items()}, flush=True)
    finally:
        housing.stop()
        servers.stop()
    load_end = load()
    rows = [
        "| Step | SQLite | PostgreSQL | PostgreSQL / SQLite |",
        "| --- | ---: | ---: | ---: |",
    ]
    for step, label in STEPS:
        lite, pg = best["sqlite"][step], best["postgresql"][step]
        text = label.format(patients=args.patients, flags=flags, referrals=args.referrals)
        rows.append(f"| {text} | {ms(lite)} | {ms(pg)} | {pg / lite:.2f} |")
    body = (
        f"Measured {date.today().isoformat()} by `python bench/store_bench.py --patients "
        f"{args.patients} --referrals {args.referrals} --rounds {args.rounds}` (best of "
        f"{args.rounds} rounds, backends alternating first; {time.perf_counter() - started:.0f} s "
        f"in all); load average (1 / 5 / 15 min) {load_start} at the start, {load_end} at "
        'the end. Machine: see "Machine" below.\n\n' + "\n".join(rows)
    )
    machine_body = "\n".join(
        [
            "| What | Value |",
            "| --- | --- |",
            f"| CPU, cores, Python, OS | {machine()} |",
            f"| RAM | {memory()} |",
            f"| PostgreSQL | {postgres_version()} at 127.0.0.1:5432 (Debian package, defaults) |",
            f"| Load average during the SQLite vs PostgreSQL run | {load_start} at the start, "
            f"{load_end} at the end (other engineers' test runs share the machine) |",
        ]
    )
    print(body)
    print(machine_body)
    if not args.no_write:
        write_section("## SQLite vs PostgreSQL", body)
        write_section("## Machine", machine_body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
