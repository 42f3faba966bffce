"""Benchmarks of referral delivery; prints the "Delivery" section for docs/benchmarks.md.

Run: ``python bench/delivery_bench.py [--latency-referrals 200] [--backlog 10000]
[--workers 2]``.

Targets (issue 6): from consent recorded to referral received at a FHIR endpoint on
loopback, p95 under 2 s; a backlog of 10,000 referrals drained at 200 or more a
second, with no duplicates.

The housing endpoint is the mock FHIR server in housing mode, in a thread of this
process; a write listener on its store timestamps each ServiceRequest as it lands.
Latency: referrals are queued one by one at random (Poisson) moments, as consents
come in, while one worker runs with the default ``[delivery]`` settings (it looks for
due entries every ``poll_seconds``). Backlog: the whole backlog is queued first, then
``--workers`` worker processes (``healthy-homes referrals deliver --once``) drain it
side by side; duplicates are counted on the receiver by referral identifier.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from healthy_homes.clock import SystemClock  # noqa: E402
from healthy_homes.config.models import DeliveryConfig  # noqa: E402
from healthy_homes.connector.delivery.worker import DeliveryWorker  # noqa: E402
from healthy_homes.fhir.systems import HH_REFERRAL_ID  # noqa: E402
from healthy_homes.mock_server.server import build_server  # noqa: E402
from healthy_homes.store.db import Database  # noqa: E402
from tests.delivery.helpers import received, states  # noqa: E402
from tests.delivery.seed import SERVICE_ID, enqueue, service  # noqa: E402


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


def _backlog(  # type: ignore[no-untyped-def]
    db: Database, server, size: int, workers: int, workdir: Path
) -> tuple[float, Counter[str]]:
    enqueue(db, size, datetime.now(UTC))
    config = workdir / "bench.toml"
    config.write_text(
        f'[storage]\nurl = "{db.url}"\n\n[[housing_services]]\nid = "{SERVICE_ID}"\n'
        f'name = "Housing"\nfhir_base_url = "{server.base_url}"\n\n'
        "[delivery]\nconcurrency = 16\nbatch_size = 100\n"
    )
    command = [sys.executable, "-m", "healthy_homes", "referrals", "deliver", "--once"]
    started = time.monotonic()
    processes = [
        subprocess.Popen([*command, "--config", str(config)], stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    for process in processes:
        process.wait()
    elapsed = time.monotonic() - started
    return elapsed, states(db)


def main() -> None:
    """Run both measurements and print the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-referrals", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="consents a second (5)")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
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
            db = Database(f"sqlite:///{workdir / 'backlog.db'}")
            db.upgrade()
            elapsed, outbox_states = _backlog(db, server, args.backlog, args.workers, workdir)
            counts = received(server)
        finally:
            server.stop()
    p50 = statistics.median(lat)
    p95 = lat[int(0.95 * (len(lat) - 1))]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    rate = args.backlog / elapsed
    print("## Delivery\n")
    when = f"{datetime.now(UTC):%Y-%m-%d}"
    print(f"Measured {when} by `python bench/delivery_bench.py` on: {machine}.\n")
    print("| What | Result | Target | Met |\n| --- | ---: | --- | --- |")
    print(
        f"| Consent recorded to referral received, {len(lat)} referrals at {args.rate:g}/s, "
        f"one worker, default settings: p50 / p95 / max | {p50 * 1000:.0f} ms / "
        f"{p95 * 1000:.0f} ms / {lat[-1] * 1000:.0f} ms | p95 < 2 s | "
        f"{'yes' if p95 < 2 else 'no'} |"
    )
    print(
        f"| Backlog of {args.backlog:,} drained by {args.workers} worker processes | "
        f"{elapsed:.1f} s, {rate:.0f} referrals/s | >= 200/s | {'yes' if rate >= 200 else 'no'} |"
    )
    print(
        f"| Duplicates at the receiver; outbox after | {duplicates}; {dict(outbox_states)} "
        f"| 0 | {'yes' if duplicates == 0 else 'no'} |"
    )


if __name__ == "__main__":
    main()
