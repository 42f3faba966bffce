"""Benchmarks of referral delivery; prints the "Delivery" section for docs/benchmarks.md.

Run: ``python bench/delivery_bench.py [--latency-referrals 200] [--backlog 10000]
[--workers 2]``.

Targets (issue 6): from consent recorded to referral received at a FHIR endpoint on
loopback, p95 under 2 s; a backlog of 10,000 referrals drained at 200 or more a
second, with no duplicates.

The housing endpoint is the mock FHIR server in housing mode. Latency: it runs in a
thread of this process, where a write listener on its store timestamps each
ServiceRequest as it lands; referrals are queued one by one at random (Poisson)
moments, as consents come in, while one worker runs with the default ``[delivery]``
settings (it looks for due entries every ``poll_seconds``). Backlog: the receiver
runs in its own process (``healthy-homes mock-server --mode housing``), as someone
else's server would, so it does not share this process's interpreter with the
workers; the whole backlog is queued first, then ``--workers`` worker processes
(``healthy-homes referrals deliver --once``) drain it side by side. Afterwards every
ServiceRequest the receiver holds is read back over FHIR search and counted by our
referral identifier: duplicates, and queued referrals that never arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from common import use_throwaway_keys  # also puts the repository on sys.path

from healthy_homes.clock import SystemClock
from healthy_homes.config.models import DeliveryConfig
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.mock_server.server import build_server
from healthy_homes.store.db import Database
from tests.delivery.helpers import states
from tests.delivery.seed import SERVICE_ID, enqueue, service

# Referral datasets are encrypted at rest; the worker processes read the same keys.
use_throwaway_keys()


def _machine() -> str:
    cpus = os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {cpus} CPUs; Python "
        f"{platform.python_version()} on {platform.system()} {platform.release()}; "
        f"load average at start {load}"
    )


def _arrivals(server) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """referral id -> time.monotonic() its ServiceRequest was first written."""
    seen: dict[str, float] = {}

    def listener(version) -> None:  # type: ignore[no-untyped-def]
        if version.type != "ServiceRequest" or version.version != 1:
            return
        for identifier in version.resource().get("identifier") or []:
            if identifier.get("system") == HH_REFERRAL_ID:
                seen.setdefault(str(identifier.get("value")), time.monotonic())

    server.store.add_listener(listener)
    return seen


async def _latency(db: Database, server, count: int, rate: float) -> list[float]:  # type: ignore[no-untyped-def]
    arrived = _arrivals(server)
    worker = DeliveryWorker(db, [service(server.base_url)], DeliveryConfig(), clock=SystemClock())
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    rng = random.Random(6)
    queued: dict[str, float] = {}
    for n in range(count):
        await asyncio.sleep(rng.expovariate(rate))
        [referral] = enqueue(db, 1, datetime.now(UTC), start=100_000 + n)
        queued[referral] = time.monotonic()
    deadline = time.monotonic() + 60
    # Arrivals are written by the server's thread: polled, not awaited.
    while len(set(queued) & set(arrived)) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    stop.set()
    await running
    await worker.aclose()
    return sorted(arrived[r] - t for r, t in queued.items() if r in arrived)


@contextmanager
def _receiver_process() -> Iterator[str]:
    """A housing-mode mock FHIR server in its own process; yields its FHIR base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "healthy_homes", "mock-server", "--mode", "housing"]
    process = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 300  # start-up is slow on a loaded machine
        while True:
            try:
                httpx.get(f"{base}/metadata").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait()


def _received_over_fhir(base: str) -> Counter[str]:
    """ServiceRequests the receiver holds per referral identifier, read page by page."""
    counts: Counter[str] = Counter()
    url: str | None = f"{base}/ServiceRequest?_count=1000"
    with httpx.Client(timeout=60) as client:
        while url:
            page = client.get(url).raise_for_status().json()
            for entry in page.get("entry") or []:
                for identifier in entry["resource"].get("identifier") or []:
                    if identifier.get("system") == HH_REFERRAL_ID:
                        counts[str(identifier.get("value"))] += 1
            links = {link["relation"]: link["url"] for link in page.get("link") or []}
            url = links.get("next")
    return counts


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _backlog(
    db: Database,
    base: str,
    size: int,
    workers: int,
    workdir: Path,
    profile: Path | None,
    per_request: int,
) -> tuple[float, Counter[str], Counter[str], int, float, float]:
    config = workdir / "bench.toml"
    config.write_text(
        f'[storage]\nurl = "{db.url}"\n\n[[housing_services]]\nid = "{SERVICE_ID}"\n'
        f'name = "Housing"\nfhir_base_url = "{base}"\n'
        f"referrals_per_request = {per_request}\n\n"
        "[delivery]\nconcurrency = 16\nbatch_size = 100\n"
    )
    command = ["-m", "healthy_homes", "referrals", "deliver", "--once", "--config", str(config)]
    # A worker's fixed cost (start-up, migrations check, shut-down) on an empty outbox,
    # so the per-referral figure can leave it out: it is paid once per process, not per send.
    idle = _children_cpu()
    subprocess.run([sys.executable, *command], stdout=subprocess.DEVNULL, check=True)
    idle = _children_cpu() - idle
    queued = enqueue(db, size, datetime.now(UTC))
    # --profile runs each worker under cProfile (which inflates its CPU time).
    runs = [
        [
            sys.executable,
            *(["-m", "cProfile", "-o", str(profile / f"worker-{n}.prof")] if profile else []),
            *command,
        ]
        for n in range(workers)
    ]
    cpu = _children_cpu()
    started = time.monotonic()
    processes = [subprocess.Popen(run, stdout=subprocess.DEVNULL) for run in runs]
    for process in processes:
        process.wait()
    elapsed = time.monotonic() - started
    cpu = _children_cpu() - cpu
    counts = _received_over_fhir(base)
    return elapsed, states(db), counts, sum(1 for r in queued if r not in counts), cpu, idle


def main() -> None:
    """Run both measurements and print the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-referrals", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="consents a second (5)")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--per-request",
        type=int,
        default=10,
        help="the housing service's referrals_per_request (referrals per transaction, 10)",
    )
    parser.add_argument(
        "--profile", type=Path, help="write each backlog worker's cProfile to this directory"
    )
    args = parser.parse_args()
    machine = _machine()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        workdir = Path(tmp)
        server = build_server(mode="housing").start()
        try:
            db = Database(f"sqlite:///{workdir / 'latency.db'}")
            db.upgrade()
            lat = asyncio.run(_latency(db, server, args.latency_referrals, args.rate))
            db.dispose()
        finally:
            server.stop()
        db = Database(f"sqlite:///{workdir / 'backlog.db'}")
        db.upgrade()
        before = _children_cpu()
        with _receiver_process() as fhir_base:
            elapsed, outbox_states, counts, missing, workers_cpu, idle_cpu = _backlog(
                db, fhir_base, args.backlog, args.workers, workdir, args.profile, args.per_request
            )
        receiver_cpu = _children_cpu() - before - workers_cpu - idle_cpu
        db.dispose()
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    rate = args.backlog / elapsed
    print("## Delivery\n")
    when = f"{datetime.now(UTC):%Y-%m-%d}"
    print(f"Measured {when} by `python bench/delivery_bench.py` on: {machine}.\n")
    print("| What | Result | Target | Met |\n| --- | ---: | --- | --- |")
    if lat:  # --latency-referrals 0 measures the backlog only
        p50, p95 = statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]
        print(
            f"| Consent recorded to referral received, {len(lat)} referrals at {args.rate:g}/s, "
            f"one worker, default settings: p50 / p95 / max | {p50 * 1000:.0f} ms / "
            f"{p95 * 1000:.0f} ms / {lat[-1] * 1000:.0f} ms | p95 < 2 s | "
            f"{'yes' if p95 < 2 else 'no'} |"
        )
    print(
        f"| Backlog of {args.backlog:,} drained by {args.workers} worker processes, "
        f"{args.per_request} referrals a transaction | "
        f"{elapsed:.1f} s, {rate:.0f} referrals/s | >= 200/s | {'yes' if rate >= 200 else 'no'} |"
    )
    print(
        f"| Duplicates at the receiver; queued but not received; outbox after | {duplicates}; "
        f"{missing}; {dict(outbox_states)} | 0; 0 | "
        f"{'yes' if duplicates == 0 and missing == 0 else 'no'} |"
    )
    per = 1000 / args.backlog
    print(
        f"\nBacklog CPU per referral: workers {workers_cpu * per:.2f} ms (all {args.workers} "
        f"together), receiver {receiver_cpu * per:.2f} ms (its start-up included); "
        f"one worker's fixed cost (start-up and shut-down on an empty outbox) "
        f"{idle_cpu * 1000:.0f} ms, so workers without it "
        f"{(workers_cpu - args.workers * idle_cpu) * per:.2f} ms per referral; "
        f"load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}."
    )


if __name__ == "__main__":
    main()
