"""``healthy-homes demo``: the whole flow against a synthetic practice, on localhost."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from healthy_homes.demo.scenario import DemoResult


def summary(result: DemoResult, patients: int) -> str:
    """The printed summary of a demo run."""
    lines = ["Healthy Homes demo", "=================="]
    for run in result.run.practices:
        if run.error or run.sync is None or run.flags is None:
            lines.append(f"Practice {run.practice}: FAILED: {run.error}")
            continue
        lines.append(f"Practice {run.practice}: {patients} synthetic patients on the list")
        lines.append(f"  register conditions scanned: {run.sync.conditions_scanned}")
        lines.append(f"  patients on at least one register: {run.sync.patients}")
        for name, count in run.sync.on_register.items():
            lines.append(f"    {name:<10} {count}")
        lines.append(f"  flags raised: {len(run.flags.raised)}")
        for reason, count in sorted(run.flags.skipped.items()):
            lines.append(f"    not flagged ({reason}): {count}")
    lines.append(
        f"Clinician recorded consent for patient {result.consented_patient} "
        f"and a decline for patient {result.declined_patient}"
    )
    sent = 1 if result.referral_id else 0
    lines.append(
        f"Referrals sent: {sent}"
        + (
            f" (referral {result.referral_id}, housing Task status: {result.referral_status})"
            if sent
            else ""
        )
    )
    lines.append("What the housing service received:")
    for resource_type, resources in result.housing_received.items():
        for resource in resources:
            lines.append(
                f"  {resource_type}: "
                + json.dumps(
                    {k: v for k, v in resource.items() if k not in ("meta", "text")},
                    separators=(",", ":"),
                )
            )
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the demo brings the mock servers and the whole connector, and every
    # command's parser is built from this module.
    from healthy_homes.demo.scenario import Demo

    with (
        tempfile.TemporaryDirectory(prefix="healthy-homes-demo-") as tmp,
        Demo(Path(tmp), patients=args.patients, seed=args.seed) as demo,
    ):
        result = asyncio.run(demo.run())
        print(summary(result, args.patients))
        if args.keep_running:
            print("\nServers are running (Ctrl-C to stop):")
            print(f"  practice FHIR server: {demo.practice_url}")
            print(f"  housing FHIR server:  {demo.housing_url}")
            print(f"  connector database:   {demo.db.url}")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("stopping")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    demo = subparsers.add_parser(
        "demo",
        help="run the whole flow on localhost against a synthetic practice",
        description="Start a mock practice FHIR server with a synthetic practice and a mock "
        "housing service, run the connector once, play a clinician who records one consent "
        "and one decline, forward the consented referral and print what the housing side got. "
        "No live records are touched.",
    )
    demo.add_argument("--patients", type=int, default=300, help="practice size (default 300)")
    demo.add_argument("--seed", type=int, default=7, help="synthetic data seed (default 7)")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the servers up afterwards and print their URLs",
    )
    demo.set_defaults(handler=_demo)
