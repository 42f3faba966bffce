"""One pass of the connector over every configured practice."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import PracticeConfig, Settings
from healthy_homes.connector.context import ProgressHook, TransportFactory, practice_client
from healthy_homes.connector.reports import PracticeRun, RunKind, RunReport
from healthy_homes.connector.service import ConnectorService
from healthy_homes.fhir.retry import RetryPolicy, Sleep
from healthy_homes.store.db import Database

__all__ = [
    "PracticeRun",
    "RunReport",
    "TransportFactory",
    "practice_client",
    "run_once",
    "run_practice",
]


async def run_practice(
    settings: Settings,
    practice: PracticeConfig,
    db: Database,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    kind: RunKind = "auto",
) -> PracticeRun:
    """Sync one practice's registers and raise its flags; failures stay inside this practice."""
    only = settings.model_copy(update={"practices": [practice]})
    async with ConnectorService(
        only, db, clock, transport_for=(lambda _: transport) if transport else None
    ) as service:
        return await service.run(practice.ods_code, kind, wait=True, appointments=True)


async def run_once(
    settings: Settings,
    db: Database,
    clock: Clock,
    transport_for: TransportFactory | None = None,
    *,
    kind: RunKind = "auto",
    practices: Sequence[str] | None = None,
    progress: ProgressHook | None = None,
    sleep: Sleep | None = None,
    policy: RetryPolicy | None = None,
) -> RunReport:
    """Run every practice (or those named) concurrently, so one slow or failing one delays none.

    ``kind`` "auto" reads registers with a watermark incrementally and the rest in
    full; "full" is a full reconciliation of every register.
    """
    async with ConnectorService(
        settings,
        db,
        clock,
        transport_for=transport_for,
        sleep=sleep,
        policy=policy,
        progress=progress,
    ) as service:
        return await service.run_all(kind, practices, appointments=True)
