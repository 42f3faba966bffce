"""A delivery worker process for the crash test: ``python worker_process.py CONFIG``.

The same code as ``healthy-homes referrals deliver --once`` (:func:`deliver`), except
that it loads everything first and starts delivering only when a line arrives on
stdin. The test starts the next worker while the current one still runs, so a
restart costs no import time; it is told to go only after the kill.
"""

from __future__ import annotations

import asyncio
import sys

from healthy_homes.config.loader import load_settings
from healthy_homes.connector.delivery.cli import deliver
from healthy_homes.referrals.transports import fhir_rest  # noqa: F401  (loaded before the go)
from healthy_homes.store.db import Database


def main() -> int:
    """Wait for the go, deliver what is due, exit 0."""
    settings = load_settings(sys.argv[1])
    db = Database(settings.storage.url)
    if not sys.stdin.readline():
        return 1  # the test went away
    try:
        asyncio.run(deliver(settings, db, once=True))
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
