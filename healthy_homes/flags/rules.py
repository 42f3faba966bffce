"""The flag rule: who to prompt about, with reasons a clinician can read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import parse_date
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.store.models import RegisterMembership


@dataclass(frozen=True)
class Decision:
    """Whether to flag a patient, and why (or why not)."""

    flag: bool
    reasons: list[str] = field(default_factory=list)
    registers: list[str] = field(default_factory=list)
    why_not: str | None = None


def patient_is_current(patient: JSON) -> str | None:
    """Why a patient cannot be flagged at all (deceased, left the practice), or None."""
    if patient.get("deceasedBoolean") or patient.get("deceasedDateTime"):
        return "deceased"
    if patient.get("active") is False:
        return "no longer registered"
    return None


def decide(
    memberships: list[RegisterMembership],
    patient: JSON,
    registers: dict[str, RegisterDefinition],
    *,
    already_open: bool,
    today: date,
) -> Decision:
    """Flag a patient on at least one enabled register who is not already flagged or referred."""
    if already_open:
        return Decision(False, why_not="already flagged or referred")
    unavailable = patient_is_current(patient)
    if unavailable:
        return Decision(False, why_not=unavailable)
    birth = parse_date(patient.get("birthDate"))
    eligible = [
        m
        for m in memberships
        if m.register_name in registers and registers[m.register_name].age_ok(birth, today)
    ]
    if not eligible:
        return Decision(False, why_not="outside every register's age band")
    reasons = []
    for m in sorted(eligible, key=lambda m: m.register_name):
        title = registers[m.register_name].title
        since = f" since {m.since.year}" if m.since else ""
        reasons.append(f"On {title} register{since}")
    return Decision(True, reasons=reasons, registers=[m.register_name for m in eligible])
