"""Register rules: what one Condition means for a register, and who is on it.

A Condition plays at most one role for a register: a diagnosis that counts, a
'resolved' code, or an exclusion. Membership follows from the roles a patient's
Conditions play (QOF style: the latest diagnosis must be newer than the latest
resolved code) and from whether the patient is still alive and registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from healthy_homes.fhir.resources import first_code, parse_date, reference_id
from healthy_homes.fhir.systems import CONDITION_CLINICAL, CONDITION_VERIFICATION
from healthy_homes.registers.definitions import RegisterDefinition

JSON = dict[str, Any]
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})


class Role(StrEnum):
    """What a Condition does for a register."""

    DIAGNOSIS = "diagnosis"
    RESOLVED = "resolved"
    EXCLUSION = "exclusion"
    #: An entry in the practice's register Group (keyed by patient id, not a Condition).
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Classified:
    """A Condition's role for one register, its subject and its date."""

    condition_id: str
    patient_id: str
    role: Role | None
    noted: date | None


def _codes(condition: JSON) -> set[tuple[str, str]]:
    coding = (condition.get("code") or {}).get("coding") or []
    return {(str(c.get("system")), str(c.get("code"))) for c in coding if c.get("code")}


def _unresolved(condition: JSON, statuses: frozenset[str]) -> bool:
    clinical = first_code(condition.get("clinicalStatus"), CONDITION_CLINICAL)
    if clinical is not None and clinical not in statuses:
        return False
    return not (condition.get("abatementDateTime") or condition.get("abatementPeriod"))


def condition_date(condition: JSON) -> date | None:
    """When the Condition began: onset, else the date it was recorded."""
    return parse_date(condition.get("onsetDateTime")) or parse_date(condition.get("recordedDate"))


def role_of(condition: JSON, register: RegisterDefinition) -> Role | None:
    """The role a Condition plays for a register now, or None if it plays none.

    Servers that ignore a search parameter must not widen a register, so codes are
    checked here too, not only in the search.
    """
    verification = first_code(condition.get("verificationStatus"), CONDITION_VERIFICATION)
    if verification in EXCLUDED_VERIFICATION:
        return None
    codes = _codes(condition)
    if codes & register.diagnosis_codes():
        return Role.DIAGNOSIS if _unresolved(condition, register.clinical_statuses) else None
    if codes & register.resolved_codes():
        return Role.RESOLVED
    if codes & register.exclusion_codes():
        return Role.EXCLUSION if _unresolved(condition, register.clinical_statuses) else None
    return None


def classify(condition: JSON, register: RegisterDefinition) -> Classified | None:
    """The Condition's role with its ids; None when it has no id or no Patient subject."""
    condition_id = condition.get("id")
    patient_id = reference_id(condition.get("subject"), "Patient")
    if not condition_id or patient_id is None:
        return None
    return Classified(
        str(condition_id), patient_id, role_of(condition, register), condition_date(condition)
    )


def patient_is_current(patient: JSON) -> bool:
    """Alive and still registered at the practice."""
    if patient.get("deceasedBoolean") or patient.get("deceasedDateTime"):
        return False
    return patient.get("active") is not False


@dataclass(frozen=True, slots=True)
class Member:
    """A patient on a register: since when, and the diagnoses that put them there."""

    since: date | None
    condition_ids: tuple[str, ...]


def membership(
    roles: list[tuple[str, Role, date | None]], *, current: bool = True
) -> Member | None:
    """Whether a patient with Conditions playing ``roles`` is on the register.

    ``roles`` holds (condition id, role, date). Undated entries count as oldest, so an
    undated resolved code never outranks a dated diagnosis, and an undated diagnosis
    never outranks a dated resolved code.
    """
    if not current:
        return None
    listed = [d for _, r, d in roles if r is Role.MEMBER]
    if listed:
        dated_entries = [d for d in listed if d is not None]
        return Member(min(dated_entries) if dated_entries else None, ())
    diagnoses = [(d, c) for c, r, d in roles if r is Role.DIAGNOSIS]
    if not diagnoses or any(r is Role.EXCLUSION for _, r, _ in roles):
        return None
    resolved = [d for _, r, d in roles if r is Role.RESOLVED]
    if resolved:
        latest_diagnosis = max((d or date.min) for d, _ in diagnoses)
        latest_resolved = max((d or date.min) for d in resolved)
        if latest_resolved >= latest_diagnosis:
            return None
    dated = [d for d, _ in diagnoses if d is not None]
    return Member(min(dated) if dated else None, tuple(sorted(c for _, c in diagnoses)))
