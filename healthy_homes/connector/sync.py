"""Register sync entry points kept for callers of the walking skeleton.

The work is done by :mod:`practice_sync` and the three sources
(:mod:`condition_source`, :mod:`group_source`, :mod:`bulk_source`).
"""

from __future__ import annotations

from healthy_homes.clock import Clock
from healthy_homes.config.models import PracticeConfig, Settings
from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.practice_sync import sync_registers
from healthy_homes.connector.reports import Mode, SyncReport
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.rules import Role, role_of
from healthy_homes.store.db import Database

__all__ = ["SyncReport", "condition_counts", "sync_practice"]


def condition_counts(condition: JSON, register: RegisterDefinition) -> bool:
    """Whether a Condition, on its own, puts its subject on the register."""
    return role_of(condition, register) is Role.DIAGNOSIS


async def sync_practice(
    client: FhirClient,
    db: Database,
    practice: str,
    registers: list[RegisterDefinition],
    clock: Clock,
    *,
    settings: Settings | None = None,
    mode: Mode = "full",
) -> SyncReport:
    """Read every given register of one practice (in full by default) over ``client``."""
    base = settings or Settings()
    config = next(
        (p for p in base.practices if p.ods_code == practice),
        PracticeConfig.model_validate(
            {"ods_code": practice, "name": practice, "fhir_base_url": client.base_url}
        ),
    )
    ctx = PracticeContext(base, config, client, db, clock, list(registers))
    return await sync_registers(ctx, mode)
