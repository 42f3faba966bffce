"""Registers as a practice configures them: code sets, status rules, exclusions, age band."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from healthy_homes.config.models import PracticeConfig, RegisterConfig, Settings
from healthy_homes.registers.codesets import BUILT_IN, CodeSet, load_codeset

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
# Keeps each search URL well inside what servers and proxies accept (often 8 KiB).
MAX_TOKEN_CHARS = 3000


@dataclass(frozen=True)
class RegisterDefinition:
    """A register ready to sync: its code sets, the rules around them, and its age band."""

    name: str
    codeset: CodeSet
    min_age: int | None = None
    max_age: int | None = None
    clinical_statuses: frozenset[str] = ACTIVE_CLINICAL
    honour_resolved_codes: bool = True
    exclusions: CodeSet | None = None
    display_title: str | None = None

    @property
    def title(self) -> str:
        """Human-readable name for clinicians and reports."""
        return self.display_title or self.codeset.title

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

    @cached_property
    def _code_sets(self) -> tuple[frozenset[tuple[str, str]], ...]:
        # Asked for every Condition read, so built once.
        diagnosis = frozenset((self.codeset.system, c.code) for c in self.codeset.codes)
        resolved: frozenset[tuple[str, str]] = frozenset()
        if self.honour_resolved_codes:
            resolved = frozenset((self.codeset.system, c.code) for c in self.codeset.resolved_codes)
        excluded: frozenset[tuple[str, str]] = frozenset()
        if self.exclusions is not None:
            excluded = frozenset((self.exclusions.system, c.code) for c in self.exclusions.codes)
        return diagnosis, resolved, excluded

    @cached_property
    def code_ranks(self) -> dict[tuple[str, str], int]:
        """(system, code) -> the strongest role it gives: 0 diagnosis, 1 resolved, 2 exclusion.

        One dict lookup per coding classifies a Condition (a code in two sets counts
        as the stronger, as the rules read them).
        """
        diagnosis, resolved, excluded = self._code_sets
        ranks = dict.fromkeys(excluded, 2)
        ranks.update(dict.fromkeys(resolved, 1))
        ranks.update(dict.fromkeys(diagnosis, 0))
        return ranks

    def diagnosis_codes(self) -> frozenset[tuple[str, str]]:
        """(system, code) pairs that put a patient on the register."""
        return self._code_sets[0]

    def resolved_codes(self) -> frozenset[tuple[str, str]]:
        """(system, code) pairs that take a patient off again, if honoured."""
        return self._code_sets[1]

    def exclusion_codes(self) -> frozenset[tuple[str, str]]:
        """(system, code) pairs that exclude a patient while unresolved."""
        return self._code_sets[2]

    def search_tokens(self, max_chars: int = MAX_TOKEN_CHARS) -> list[str]:
        """Every code the register reads, as FHIR token values (comma = OR) of bounded length.

        One search covers diagnosis, resolved and exclusion codes, so an incremental
        poll costs one request per register; very long clusters are split.
        """
        pairs = sorted(self.diagnosis_codes() | self.resolved_codes() | self.exclusion_codes())
        chunks: list[str] = []
        current: list[str] = []
        size = 0
        for system, code in pairs:
            token = f"{system}|{code}"
            if current and size + len(token) + 1 > max_chars:
                chunks.append(",".join(current))
                current, size = [], 0
            current.append(token)
            size += len(token) + 1
        if current:
            chunks.append(",".join(current))
        return chunks

    def fingerprint(self) -> str:
        """A hash of everything that decides which Conditions count.

        Stored with the watermark: when a code set or rule changes, the old watermark
        no longer describes what was read, so the next run must be a full read.
        """
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        # Asked for at every run and read of the register; the definition never changes.
        parts = [
            "d:" + ",".join(sorted(f"{s}|{c}" for s, c in self.diagnosis_codes())),
            "r:" + ",".join(sorted(f"{s}|{c}" for s, c in self.resolved_codes())),
            "x:" + ",".join(sorted(f"{s}|{c}" for s, c in self.exclusion_codes())),
            "s:" + ",".join(sorted(self.clinical_statuses)),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def definition_from_config(cfg: RegisterConfig) -> RegisterDefinition:
    """A register definition from its configuration, loading its code sets."""
    codeset = load_codeset(cfg.codeset)
    return RegisterDefinition(
        name=cfg.name,
        codeset=codeset,
        min_age=cfg.min_age if cfg.min_age is not None else codeset.min_age,
        max_age=cfg.max_age if cfg.max_age is not None else codeset.max_age,
        clinical_statuses=frozenset(cfg.clinical_statuses),
        honour_resolved_codes=cfg.resolved_codes,
        exclusions=load_codeset(cfg.exclusion_codeset) if cfg.exclusion_codeset else None,
        display_title=cfg.title,
    )


def resolve_registers(settings: Settings, practice: PracticeConfig) -> list[RegisterDefinition]:
    """The enabled registers of a practice, with code sets loaded.

    Order: the practice's ``registers`` list (built-in or ``[[registers]]`` entries,
    a practice's own entry winning), then its own registers not already listed.
    """
    shared = {r.name: r for r in settings.registers}
    own = {r.name: r for r in practice.own_registers}
    result: list[RegisterDefinition] = []
    names = [*practice.registers, *(n for n in own if n not in practice.registers)]
    for name in names:
        cfg = own.get(name) or shared.get(name)
        if cfg is not None:
            if cfg.enabled:
                result.append(definition_from_config(cfg))
        elif name in BUILT_IN:
            codeset = load_codeset(name)
            result.append(RegisterDefinition(name, codeset, codeset.min_age, codeset.max_age))
    return result
