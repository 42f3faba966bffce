"""A delivery worker process for the three-worker test: ``delivery_process.py CONFIG NAME LOG``.

The connector's :class:`DeliveryWorker` (lease owner ``NAME``) in its running mode
until SIGTERM. Its transport is the configured one, wrapped to append each referral id
the receiver acknowledged to ``LOG`` with one unbuffered write, so the test can count
each worker's share even after SIGKILL. It loads everything first and starts on a line
from stdin.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from healthy_homes.clock import SystemClock
from healthy_homes.config.loader import load_settings
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.referrals.transports.base import (
    DeliveryReceipt,
    ReferralEnvelope,
    Transport,
    transport_for,
)
from healthy_homes.store.db import Database


class Recording:
    """The real transport, noting each acknowledged referral id in this worker's log."""

    def __init__(self, inner: Transport, fd: int) -> None:
        self.inner = inner
        self.fd = fd

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        receipt = await self.inner.deliver(envelope)
        os.write(self.fd, f"{envelope.referral_id}\n".encode())
        return receipt

    async def cancel(self, envelope: ReferralEnvelope, reason: str) -> None:
        await self.inner.cancel(envelope, reason)

    async def poll_status(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> str | None:
        return await self.inner.poll_status(envelope, receipt)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _work(config: str, name: str, fd: int) -> None:
    settings = load_settings(config)
    db = Database(settings.storage.url)
    clock = SystemClock()

    def recorded(service: HousingServiceConfig) -> Transport:
        return Recording(transport_for(service, clock=clock), fd)

    worker = DeliveryWorker(
        db,
        settings.housing_services,
        settings.delivery,
        clock=clock,
        owner=name,
        transports=recorded,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    if await asyncio.to_thread(sys.stdin.readline):
        try:
            await worker.run(stop)
        finally:
            await worker.aclose()
    db.dispose()


def main() -> int:
    """Deliver until SIGTERM; exit 0."""
    fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        asyncio.run(_work(sys.argv[1], sys.argv[2], fd))
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
