"""What connector runs report: counts and outcomes, never patient identifiers in text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from healthy_homes.flags.lifecycle import FlagReport

Mode = Literal["auto", "full", "incremental"]
RunKind = Literal["auto", "full", "incremental", "appointments"]


@dataclass
class SyncReport:
    """What a sync of one practice found."""

    practice: str
    conditions_scanned: int = 0
    on_register: dict[str, int] = field(default_factory=dict)
    left_register: dict[str, int] = field(default_factory=dict)
    joined_register: dict[str, int] = field(default_factory=dict)
    read_mode: dict[str, str] = field(default_factory=dict)
    patients: int = 0
    patients_polled: int = 0
    flags_retired: int = 0

    @property
    def anyone_joined(self) -> bool:
        """Whether any patient joined any register in this sync."""
        return any(self.joined_register.values())


@dataclass
class AppointmentReport:
    """What one appointment watch found."""

    practice: str
    seen: int = 0
    watched: int = 0
    removed: int = 0


@dataclass
class PracticeRun:
    """Outcome of one practice's pass."""

    practice: str
    kind: RunKind = "auto"
    sync: SyncReport | None = None
    flags: FlagReport | None = None
    appointments: AppointmentReport | None = None
    error: str | None = None
    skipped: bool = False
    started: datetime | None = None
    finished: datetime | None = None


@dataclass
class RunReport:
    """Outcome of a pass over all practices."""

    practices: list[PracticeRun] = field(default_factory=list)

    @property
    def failed(self) -> list[PracticeRun]:
        """The practices whose run failed."""
        return [run for run in self.practices if run.error]
