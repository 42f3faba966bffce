"""Benchmark of the CDS Hooks ``patient-view`` service; writes "CDS Hooks" in docs/benchmarks.md.

Run: ``python bench/cds_hooks_bench.py`` (``--seconds 10`` per phase, ``--no-write``).

Target (issue 5): p99 under 50 ms with 10 concurrent clients, and at least 300
requests per second. The service runs as ``cds-hooks serve`` would (uvicorn, one
process) in a child process, so the load generator does not share its interpreter;
the store is SQLite with 2,000 register patients, 1,000 of them flagged. Each call
carries a fresh ES384 JWT (signed beforehand, as an EHR would) and the Patient as
prefetch; half the calls are for flagged patients and get a card, whose 'shown'
event is written after the answer. Baseline, same server, same run: a trivial
``GET /bench/ping`` FastAPI endpoint under the same 10 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from common import DOC, ROOT, use_throwaway_keys, write_section

from healthy_homes.fhir.keys import generate_private_key, public_jwk

use_throwaway_keys()  # the scripts' databases hold encrypted columns
SECTION = "## CDS Hooks"
PRACTICE = "A12345"
ISSUER = "https://ehr.bench.example"
BASE = "https://cds.bench.example"
SERVICE = "healthy-homes-patient-view"
PATIENTS, FLAGGED, CLIENTS = 2000, 1000, 10


def machine() -> str:
    """CPU model, cores, memory and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else cpu
        kb = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem = f", {int(kb.group(1)) / 1024 / 1024:.0f} GiB RAM" if kb else ""
    except OSError:
        mem = ""
    return (
        f"{cpu}, {os.cpu_count()} CPUs{mem}; Python {platform.python_version()} "
        f"on {platform.system()} {platform.release()}"
    )


# -- the server (child process) --------------------------------------------------------


def seed(db_url: str) -> None:
    """Register patients with flags, as a sync and a flag run would leave them."""
    from healthy_homes.store.db import Database
    from healthy_homes.store.models import FlagRecord, RegisterMembership

    db = Database(db_url)
    db.upgrade()
    now = datetime.now(UTC)
    with db.session() as session:
        for i in range(PATIENTS):
            session.add(
                RegisterMembership(
                    practice_ods=PRACTICE,
                    register_name="copd",
                    patient_id=f"pat{i}",
                    updated_at=now,
                )
            )
            if i < FLAGGED:
                session.add(
                    FlagRecord(
                        practice_ods=PRACTICE,
                        patient_id=f"pat{i}",
                        registers=["copd"],
                        reasons=[
                            "On COPD register since 2019",
                            "not offered in the last 12 months",
                        ],
                        rule_set_version="bench",
                        priority=1 + i % 3,
                        fhir_flag_id=f"flag{i}",
                        fhir_status="active",
                        created_at=now,
                        updated_at=now,
                    )
                )
    db.dispose()


def serve(db_url: str, port: int, jwk: dict[str, Any]) -> None:
    """Run the app exactly as the CLI does, plus the baseline route."""
    import uvicorn
    from fastapi import FastAPI

    from healthy_homes.clock import SystemClock
    from healthy_homes.config.models import Settings
    from healthy_homes.flags.cds_hooks.app import create_app
    from healthy_homes.flags.cds_hooks.service import CdsHooksService
    from healthy_homes.store.db import Database

    settings = Settings.model_validate(
        {
            "practices": [
                {"ods_code": PRACTICE, "name": "Bench", "fhir_base_url": "http://127.0.0.1:9/fhir"}
            ],
            "housing_services": [
                {"id": "h", "name": "Housing", "fhir_base_url": "http://127.0.0.1:9/fhir"}
            ],
            "cds_hooks": {
                "public_base_url": BASE,
                "issuers": [{"iss": ISSUER, "jwks": {"keys": [jwk]}, "practice_ods": PRACTICE}],
            },
        }
    )
    app: FastAPI = create_app(CdsHooksService(settings, Database(db_url), SystemClock()))

    @app.get("/bench/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# -- the load (this process) ----------------------------------------------------------


def tokens(key: Any, kid: str, count: int) -> list[str]:
    """JWTs as the EHR signs them, one per call (each jti is accepted once)."""
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": f"{BASE}/cds-services/{SERVICE}",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=4)).timestamp()),
    }
    headers = {"kid": kid, "typ": "JWT"}
    return [
        jwt.encode({**claims, "jti": str(uuid.uuid4())}, key, algorithm="ES384", headers=headers)
        for _ in range(count)
    ]


def body(i: int) -> bytes:
    """A patient-view call; even i are flagged patients, odd i are not."""
    patient_id = f"pat{(i // 2) % FLAGGED}" if i % 2 == 0 else f"pat{FLAGGED + (i // 2) % FLAGGED}"
    return json.dumps(
        {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/bench", "patientId": patient_id},
            "prefetch": {
                "patient": {"resourceType": "Patient", "id": patient_id, "birthDate": "1950-01-01"}
            },
        }
    ).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection, kept minimal so the load generator stays cheap."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, method: str, path: str, payload: bytes, headers: dict[str, str]) -> int:
        """Send one request, read the whole answer; return its status code."""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(payload)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def load(
    port: int, seconds: float, make: Any, warmup: float = 2.0
) -> tuple[list[float], float, int]:
    """CLIENTS concurrent clients for ``seconds`` after a warm-up: latencies (s), rate, errors."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    connections = [await Connection.open(port) for _ in range(CLIENTS)]

    async def client(connection: Connection, until: float, record: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            method, path, payload, headers = make(next(counter))
            started = time.perf_counter()
            status = await connection.request(method, path, payload, headers)
            elapsed = time.perf_counter() - started
            if status != 200:
                errors += 1
            elif record:
                latencies.append(elapsed)

    warm_end = time.perf_counter() + warmup
    await asyncio.gather(*(client(c, warm_end, False) for c in connections))
    start = time.perf_counter()
    await asyncio.gather(*(client(c, start + seconds, True) for c in connections))
    rate = len(latencies) / (time.perf_counter() - start)
    for connection in connections:
        connection.close()
    return latencies, rate, errors


def pct(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    parser.add_argument(
        "--serve", nargs=3, metavar=("DB_URL", "PORT", "JWK"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), json.loads(args.serve[2]))
        return 0

    load_before = os.getloadavg()[0]  # other work on the machine skews every number
    key = generate_private_key("ES384")
    jwk = public_jwk(key, kid="bench")
    with tempfile.TemporaryDirectory() as folder:
        db_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        seed(db_url)
        port = 18090 + os.getpid() % 1000
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", db_url, str(port), json.dumps(jwk)]
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/bench/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            signed = tokens(key, "bench", int(2000 * (args.seconds + 3)))
            path = f"/cds-services/{SERVICE}"

            def hook(i: int) -> tuple[str, str, bytes, dict[str, str]]:
                headers = {
                    "Authorization": f"Bearer {signed[i]}",
                    "Content-Type": "application/json",
                }
                return "POST", path, body(i), headers

            base, base_rate, base_errors = asyncio.run(
                load(port, args.seconds, lambda i: ("GET", "/bench/ping", b"", {}))
            )
            hooked, rate, errors = asyncio.run(load(port, args.seconds, hook))
        finally:
            child.terminate()
            child.wait(10)
    rows = [
        ("Baseline: `GET /bench/ping` (trivial FastAPI endpoint)", base, base_rate, base_errors),
        ("`POST /cds-services/healthy-homes-patient-view`, half flagged", hooked, rate, errors),
    ]
    p99 = pct(hooked, 99)
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python bench/cds_hooks_bench.py` on: "
        f"{machine()}; load average {load_before:.1f} when the run started.",
        "",
        "| What | p50 | p95 | p99 | requests/s | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {name} | {pct(lat, 50):.1f} ms | {pct(lat, 95):.1f} ms | {pct(lat, 99):.1f} ms "
            f"| {r:,.0f} | {e} |"
            for name, lat, r, e in rows
        ),
        "",
        f"Target: p99 under 50 ms with {CLIENTS} concurrent clients and at least 300 "
        f"requests/s. Met: {'yes' if p99 < 50 and rate >= 300 else 'NO'} "
        f"(p99 {p99:.1f} ms at {rate:,.0f} requests/s; the baseline's own p99 is "
        f"{pct(base, 99):.1f} ms).",
        "",
        f"{CLIENTS} concurrent clients, each on its own keep-alive connection (a minimal "
        "asyncio HTTP/1.1 client, so that the load generator takes little of the CPU), sending "
        f"its next call as soon as the last is answered, for {args.seconds:g} s after a 2 s "
        "warm-up; latency is measured at the client. The service "
        "runs in a separate process (uvicorn, one worker) over SQLite with "
        f"{PATIENTS:,} register patients, {FLAGGED:,} flagged. Every call has a fresh ES384 "
        "JWT (verified, jti recorded) and the Patient prefetched, so no FHIR server is called; "
        "flagged patients get a card and a 'shown' event written after the answer (batched, one "
        "transaction per batch). Server and load generator share the machine's CPUs, and so "
        "does whatever else runs at the time: on a busy machine expect lower numbers.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
