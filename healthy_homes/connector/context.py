"""What one practice run works with: its config, registers, FHIR client, store and clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import PracticeConfig, Settings, SyncConfig
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy, Sleep
from healthy_homes.registers.definitions import RegisterDefinition, resolve_registers
from healthy_homes.store.db import Database

TransportFactory = Callable[[str], httpx.AsyncBaseTransport | None]
#: Called with (practice, register or stream, resources just processed).
ProgressHook = Callable[[str, str, int], None]


def practice_client(
    practice: PracticeConfig,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> FhirClient:
    """The one pooled FHIR client for a practice's endpoint, with its credentials."""
    return FhirClient(
        str(practice.fhir_base_url),
        practice=practice.ods_code,
        auth=auth_from_config(practice.auth, clock=clock, practice=practice.ods_code),
        verify=tls_from_config(practice.auth),
        transport=transport,
        clock=clock,
        sleep=sleep,
        policy=policy,
        rng=rng,
    )


@dataclass
class PracticeContext:
    """Everything a sync step of one practice needs; built once per run or per service."""

    settings: Settings
    practice: PracticeConfig
    client: FhirClient
    db: Database
    clock: Clock
    registers: list[RegisterDefinition] = field(default_factory=list)
    sleep: Sleep = asyncio.sleep
    progress: ProgressHook | None = None
    #: Patients whose status was looked up in the current run (cleared at each run).
    checked: set[str] = field(default_factory=set)
    #: Their statuses, as answered so far in the current run.
    answered: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: Settings,
        practice: PracticeConfig,
        client: FhirClient,
        db: Database,
        clock: Clock,
        *,
        sleep: Sleep | None = None,
        progress: ProgressHook | None = None,
    ) -> PracticeContext:
        """A context with the practice's registers resolved from configuration."""
        return cls(
            settings,
            practice,
            client,
            db,
            clock,
            resolve_registers(settings, practice),
            sleep or asyncio.sleep,
            progress,
        )

    @property
    def ods(self) -> str:
        """The practice's ODS code."""
        return self.practice.ods_code

    @property
    def sync(self) -> SyncConfig:
        """The deployment's sync settings."""
        return self.settings.sync

    @property
    def overlap(self) -> timedelta:
        """How far before a watermark incremental reads start."""
        return timedelta(seconds=self.sync.overlap_seconds)

    @property
    def page_size(self) -> str:
        """``_count`` for searches."""
        return str(self.sync.page_size)

    def report(self, stream: str, count: int) -> None:
        """Tell the progress display about processed resources."""
        if self.progress is not None and count:
            self.progress(self.ods, stream, count)
