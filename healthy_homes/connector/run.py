"""One pass of the connector over every configured practice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import PracticeConfig, Settings
from healthy_homes.connector.sync import SyncReport, sync_practice
from healthy_homes.errors import HealthyHomesError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.lifecycle import FlagReport, raise_flags
from healthy_homes.registers.definitions import resolve_registers
from healthy_homes.store.db import Database

log = logging.getLogger(__name__)

TransportFactory = Callable[[str], httpx.AsyncBaseTransport | None]


@dataclass
class PracticeRun:
    """Outcome of one practice's pass."""

    practice: str
    sync: SyncReport | None = None
    flags: FlagReport | None = None
    error: str | None = None


@dataclass
class RunReport:
    """Outcome of a pass over all practices."""

    practices: list[PracticeRun] = field(default_factory=list)


def practice_client(
    practice: PracticeConfig, transport: httpx.AsyncBaseTransport | None
) -> FhirClient:
    """The pooled FHIR client for a practice's endpoint."""
    return FhirClient(str(practice.fhir_base_url), practice=practice.ods_code, transport=transport)


async def run_practice(
    settings: Settings,
    practice: PracticeConfig,
    db: Database,
    clock: Clock,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PracticeRun:
    """Sync one practice's registers and raise its flags; failures stay inside this practice."""
    result = PracticeRun(practice.ods_code)
    try:
        registers = resolve_registers(settings, practice)
        async with practice_client(practice, transport) as client:
            result.sync = await sync_practice(client, db, practice.ods_code, registers, clock)
            result.flags = await raise_flags(
                db, client, practice.ods_code, registers, settings.flags, clock
            )
    except HealthyHomesError as exc:
        result.error = str(exc)
        log.warning("practice run failed: %s", exc, extra={"practice": practice.ods_code})
    return result


async def run_once(
    settings: Settings,
    db: Database,
    clock: Clock,
    transport_for: TransportFactory | None = None,
) -> RunReport:
    """Run every practice concurrently, so one slow or failing practice delays no other."""
    runs = await asyncio.gather(
        *(
            run_practice(
                settings, p, db, clock, transport_for(p.ods_code) if transport_for else None
            )
            for p in settings.practices
        )
    )
    return RunReport(list(runs))
