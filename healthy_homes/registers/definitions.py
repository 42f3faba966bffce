"""Registers as a practice configures them: a code set plus age rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from healthy_homes.config.models import PracticeConfig, Settings
from healthy_homes.registers.codesets import BUILT_IN, CodeSet, load_codeset


@dataclass(frozen=True)
class RegisterDefinition:
    """A register ready to sync: its name, code set and age band."""

    name: str
    codeset: CodeSet
    min_age: int | None = None
    max_age: int | None = None

    @property
    def title(self) -> str:
        """Human-readable name for clinicians and reports."""
        return self.codeset.title

    def age_ok(self, birth_date: date | None, today: date) -> bool:
        """Whether a patient born on ``birth_date`` is inside the register's age band."""
        if self.min_age is None and self.max_age is None:
            return True
        if birth_date is None:
            return False
        had_birthday = (today.month, today.day) >= (birth_date.month, birth_date.day)
        age = today.year - birth_date.year - (0 if had_birthday else 1)
        if self.min_age is not None and age < self.min_age:
            return False
        return self.max_age is None or age <= self.max_age


def resolve_registers(settings: Settings, practice: PracticeConfig) -> list[RegisterDefinition]:
    """The enabled registers of a practice, with code sets loaded."""
    custom = {r.name: r for r in settings.registers}
    result = []
    for name in practice.registers:
        cfg = custom.get(name)
        if cfg is not None:
            if not cfg.enabled:
                continue
            codeset = load_codeset(cfg.codeset)
            result.append(
                RegisterDefinition(
                    name=name,
                    codeset=codeset,
                    min_age=cfg.min_age if cfg.min_age is not None else codeset.min_age,
                    max_age=cfg.max_age if cfg.max_age is not None else codeset.max_age,
                )
            )
        elif name in BUILT_IN:
            codeset = load_codeset(name)
            result.append(RegisterDefinition(name, codeset, codeset.min_age, codeset.max_age))
    return result
