"""Benchmarks of the mock FHIR server; writes the "Mock FHIR server" section of docs/benchmarks.md.

Run: ``python bench/mock_server_bench.py`` (``--skip-million`` leaves out the
one-million-patient start, which takes about a minute and 2 GB).

Targets (issue 3): the register search of a 10k-patient practice (about 1,000
matching Conditions, ``_count=100``, every page) served end to end in under 1 s;
start with 1,000,000 patients in under 60 s and under 2 GB. Each result is also
given as a ratio to a baseline measured in the same run on the same machine: one
``GET /metadata`` round trip over loopback.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import httpx
from common import DOC, ROOT, write_section

from healthy_homes.mock_server.server import build_server

SECTION = "## Mock FHIR server"
TODAY = date(2026, 3, 2)
SCT = "http://snomed.info/sct"
#: COPD and asthma, with descendants: the connector's first register sync.
REGISTER_CODES = ",".join(
    f"{SCT}|{c}" for c in ("13645005", "185086009", "87433001", "195967001", "233678006")
)

_MILLION = textwrap.dedent(
    """
    import resource, sys, time
    import httpx
    from datetime import date
    from healthy_homes.mock_server.server import build_server
    t0 = time.perf_counter()
    server = build_server(patients=1_000_000, seed=7, today=date(2026, 3, 2)).start()
    ready = time.perf_counter() - t0
    ok = httpx.get(server.base_url + "/metadata").status_code == 200
    count = server.store.count()
    server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{ready:.2f} {peak:.0f} {count} {ok}")
    """
)


def machine() -> str:
    """CPU model, cores, memory and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", text)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs{mem}; Python {platform.python_version()} "
        f"on {platform.system()} {platform.release()}"
    )


def baseline(http: httpx.Client, rounds: int = 200) -> float:
    """Median seconds of one GET /metadata round trip."""
    http.get("metadata")
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        http.get("metadata").raise_for_status()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def register_search(http: httpx.Client, params: dict[str, str]) -> tuple[float, int, int]:
    """Seconds to page through every match; (seconds, matches, pages)."""
    t = time.perf_counter()
    bundle = http.get("Condition", params=params).raise_for_status().json()
    matches, pages = 0, 1
    while True:
        matches += sum(1 for e in bundle.get("entry", []) if e["search"]["mode"] == "match")
        nxt = next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None)
        if nxt is None:
            break
        bundle = http.get(nxt).raise_for_status().json()
        pages += 1
    return time.perf_counter() - t, matches, pages


def million() -> tuple[float, float, int, bool]:
    """Start a 1,000,000-patient server in a fresh process: (seconds, peak MiB, resources, ok)."""
    out = subprocess.run(
        [sys.executable, "-c", _MILLION], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]), out[3] == "True"


def main() -> int:
    """Run the benchmarks and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-million", action="store_true", help="skip the 1M-patient start")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    t = time.perf_counter()
    server = build_server(patients=10_000, seed=7, today=TODAY)
    load_10k = time.perf_counter() - t
    with server, httpx.Client(base_url=server.base_url + "/", timeout=60) as http:
        base = baseline(http)
        runs = [register_search(http, {"code": REGISTER_CODES, "_count": "100"}) for _ in range(5)]
        plain = min(runs)
        incl = min(
            register_search(
                http,
                {"code": REGISTER_CODES, "_count": "100", "_include": "Condition:subject"},
            )
            for _ in range(5)
        )
        watermark = min(
            register_search(
                http, {"_lastUpdated": "gt2000-01-01", "_count": "100", "code": REGISTER_CODES}
            )
            for _ in range(3)
        )

    rows = [
        ("Baseline: one `GET /metadata` round trip (median of 200)", base, None, ""),
        (
            f"Register search, 10k practice: {plain[1]} Conditions, {plain[2]} pages "
            "of `_count=100` (best of 5)",
            plain[0],
            1.0,
            "< 1 s",
        ),
        (
            f"Same with `_include=Condition:subject` ({incl[2]} pages)",
            incl[0],
            1.0,
            "< 1 s",
        ),
        ("Same with a `_lastUpdated=gt` watermark", watermark[0], 1.0, "< 1 s"),
        ("Load a 10k-patient practice in process", load_10k, None, ""),
    ]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/mock_server_bench.py` on: "
        f"{machine()}.",
        "",
        "| What | Time | Ratio to baseline | Target | Met |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for label, seconds, limit, target in rows:
        met = "" if limit is None else ("yes" if seconds < limit else "**no**")
        lines.append(
            f"| {label} | {seconds * 1000:.1f} ms | {seconds / base:.0f} | {target} | {met} |"
        )
    if not args.skip_million:
        seconds, peak, count, ok = million()
        met = "yes" if seconds < 60 and peak < 2048 and ok else "**no**"
        lines.append(
            f"| Start with 1,000,000 patients ({count:,} resources), fresh process, "
            f"peak RSS {peak:,.0f} MiB | {seconds:.1f} s | {seconds / base:.0f} | "
            f"< 60 s, < 2 GB | {met} |"
        )
    lines += [
        "",
        "Loopback HTTP with one keep-alive `httpx` client; the server is uvicorn (h11) in a "
        "thread of the same process for the 10k runs. Search pages are spliced from stored "
        "JSON bytes; paging is keyset paging over a snapshot, so every page costs about "
        "the same.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(SECTION, body)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
