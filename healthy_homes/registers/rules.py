"""Register rules: what one Condition means for a register, and who is on it.

A Condition plays at most one role for a register: a diagnosis that counts, a
'resolved' code, or an exclusion. Membership follows from the roles a patient's
Conditions play (QOF style: the latest diagnosis must be newer than the latest
resolved code) and from whether the patient is still alive and registered.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, NamedTuple

from healthy_homes.fhir.resources import parse_date, reference_id
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


class Classified(NamedTuple):
    """A Condition's role for one register, its subject and its date.

    A named tuple, not a frozen dataclass: one is made per Condition read, and a
    tuple is made several times faster.
    """

    condition_id: str
    patient_id: str
    role: Role | None
    noted: date | None


def _code_in(concept: Any, system: str) -> Any:
    """The first code of ``concept`` in ``system`` (as ``first_code``, without the lists)."""
    if not concept:
        return None
    for coding in concept.get("coding") or ():
        code = coding.get("code")
        if code and coding.get("system") == system:
            return code
    return None


def _rank(condition: JSON, ranks: dict[tuple[str, str], int]) -> int | None:
    """The strongest role any of the Condition's codes gives (see ``code_ranks``)."""
    best: int | None = None
    for coding in (condition.get("code") or {}).get("coding") or ():
        code = coding.get("code")
        if not code:
            continue
        system = coding.get("system")
        key = (
            system if type(system) is str else str(system),
            code if type(code) is str else str(code),
        )
        rank = ranks.get(key)
        if rank is not None and (best is None or rank < best):
            best = rank
    return best


def _unresolved(condition: JSON, statuses: frozenset[str]) -> bool:
    clinical = _code_in(condition.get("clinicalStatus"), CONDITION_CLINICAL)
    if clinical is not None and clinical not in statuses:
        return False
    return not (condition.get("abatementDateTime") or condition.get("abatementPeriod"))


def _date(value: Any) -> date | None:
    # The common shape (a full date or dateTime) without parse_date's other cases.
    if type(value) is str and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return parse_date(value)


def condition_date(condition: JSON) -> date | None:
    """When the Condition began: onset, else the date it was recorded."""
    return _date(condition.get("onsetDateTime")) or _date(condition.get("recordedDate"))


def role_of(condition: JSON, register: RegisterDefinition) -> Role | None:
    """The role a Condition plays for a register now, or None if it plays none.

    Servers that ignore a search parameter must not widen a register, so codes are
    checked here too, not only in the search.
    """
    rank = _rank(condition, register.code_ranks)
    if rank is None:
        return None
    verification = _code_in(condition.get("verificationStatus"), CONDITION_VERIFICATION)
    if verification in EXCLUDED_VERIFICATION:
        return None
    if rank == 1:
        return Role.RESOLVED
    if not _unresolved(condition, register.clinical_statuses):
        return None
    return Role.DIAGNOSIS if rank == 0 else Role.EXCLUSION


def _patient_id(subject: Any) -> str | None:
    # Nearly every subject is a plain relative "Patient/<id>"; anything else takes the long way.
    if subject:
        ref = subject.get("reference")
        if type(ref) is str and ref.startswith("Patient/"):
            found = ref[8:]
            if found and "/" not in found:
                return found
    return reference_id(subject, "Patient")


def classify(condition: JSON, register: RegisterDefinition) -> Classified | None:
    """The Condition's role with its ids; None when it has no id or no Patient subject."""
    condition_id = condition.get("id")
    if not condition_id:
        return None
    patient_id = _patient_id(condition.get("subject"))
    if patient_id is None:
        return None
    return Classified(
        str(condition_id), patient_id, role_of(condition, register), condition_date(condition)
    )


def patient_is_current(patient: JSON) -> bool:
    """Alive and still registered at the practice."""
    if patient.get("deceasedBoolean") or patient.get("deceasedDateTime"):
        return False
    return patient.get("active") is not False


class Member(NamedTuple):
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
    if len(roles) == 1:  # most patients: one Condition, so no dates to weigh
        condition_id, role, noted = roles[0]
        if role is Role.DIAGNOSIS:
            return Member(noted, (condition_id,))
        return Member(noted, ()) if role is Role.MEMBER else None
    listed: list[date | None] = []
    diagnoses: list[tuple[date | None, str]] = []
    resolved: list[date | None] = []
    excluded = False
    for condition_id, role, noted in roles:
        if role is Role.DIAGNOSIS:
            diagnoses.append((noted, condition_id))
        elif role is Role.RESOLVED:
            resolved.append(noted)
        elif role is Role.MEMBER:
            listed.append(noted)
        else:
            excluded = True
    if listed:
        dated_entries = [d for d in listed if d is not None]
        return Member(min(dated_entries) if dated_entries else None, ())
    if not diagnoses or excluded:
        return None
    if resolved:
        latest_diagnosis = max((d or date.min) for d, _ in diagnoses)
        latest_resolved = max((d or date.min) for d in resolved)
        if latest_resolved >= latest_diagnosis:
            return None
    dated = [d for d, _ in diagnoses if d is not None]
    return Member(min(dated) if dated else None, tuple(sorted(c for _, c in diagnoses)))
