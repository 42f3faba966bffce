"""A connector process for the guard tests: ``sync_process.py CONFIG ODS ROUNDS [--no-guard]``.

Loads everything, waits for a line on stdin, then runs ``ROUNDS`` incremental runs of
one practice through :class:`ConnectorService` (the code ``serve`` schedules), printing
one JSON line per run: when it started and finished (SystemClock), skipped, error.
``--no-guard`` swaps the cross-process guard for one that always grants, so the test
can show that the workload really overlaps without it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from healthy_homes.clock import SystemClock
from healthy_homes.config.loader import load_settings
from healthy_homes.connector.service import ConnectorService
from healthy_homes.ops.leases import Held, PracticeGuard
from healthy_homes.store.db import Database


class _Granted:
    async def release(self) -> None:
        return None


class NoGuard:
    """Grants every practice at once: the connector as it was before leases."""

    async def try_acquire(self, name: str) -> Held | None:
        return _Granted()

    def close(self) -> None:
        return None


async def _rounds(settings, db, ods: str, rounds: int, guard: PracticeGuard | None) -> None:  # type: ignore[no-untyped-def]
    async with ConnectorService(settings, db, SystemClock(), guard=guard) as service:
        print(json.dumps({"ready": True}), flush=True)
        if not sys.stdin.readline():
            return
        for _ in range(rounds):
            run = await service.run(ods, "auto")
            print(
                json.dumps(
                    {
                        "started": run.started.isoformat() if run.started else None,
                        "finished": run.finished.isoformat() if run.finished else None,
                        "skipped": run.skipped,
                        "error": run.error,
                    }
                ),
                flush=True,
            )
            await asyncio.sleep(0.01)  # let the other worker in between rounds


def main() -> int:
    """Wait for the go, run the rounds, exit 0."""
    settings = load_settings(sys.argv[1])
    db = Database(settings.storage.url)
    guard = NoGuard() if "--no-guard" in sys.argv else None
    try:
        asyncio.run(_rounds(settings, db, sys.argv[2], int(sys.argv[3]), guard))
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
