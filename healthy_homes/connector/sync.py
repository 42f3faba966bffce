"""Register sync: which patients are on which register, read by Condition search."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from healthy_homes.clock import Clock
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.resources import first_code, parse_date, reference_id
from healthy_homes.fhir.systems import CONDITION_CLINICAL, CONDITION_VERIFICATION
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import store_snapshot
from healthy_homes.store.db import Database

log = logging.getLogger(__name__)

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
PAGE_SIZE = "100"


@dataclass
class RegisterSnapshot:
    """Patients found on one register in one full read."""

    register: str
    members: dict[str, tuple[date | None, list[str]]] = field(default_factory=dict)
    conditions_scanned: int = 0


@dataclass
class SyncReport:
    """What a sync of one practice found."""

    practice: str
    conditions_scanned: int = 0
    on_register: dict[str, int] = field(default_factory=dict)
    left_register: dict[str, int] = field(default_factory=dict)

    @property
    def patients(self) -> int:
        """Distinct patients across the practice's registers (after the sync)."""
        return len(self._patients)

    _patients: set[str] = field(default_factory=set, repr=False)


def condition_counts(condition: JSON, register: RegisterDefinition) -> bool:
    """Whether a Condition puts its subject on the register.

    Unresolved, not refuted, and coded with one of the register's concepts; servers
    that ignore a search parameter must not widen a register, so the code is checked here too.
    """
    clinical = first_code(condition.get("clinicalStatus"), CONDITION_CLINICAL)
    if clinical is not None and clinical not in ACTIVE_CLINICAL:
        return False
    verification = first_code(condition.get("verificationStatus"), CONDITION_VERIFICATION)
    if verification in EXCLUDED_VERIFICATION:
        return False
    if condition.get("abatementDateTime") or condition.get("abatementPeriod"):
        return False
    wanted = register.codeset.code_values()
    system = register.codeset.system
    coding = (condition.get("code") or {}).get("coding") or []
    return any(c.get("system") == system and c.get("code") in wanted for c in coding)


def _condition_date(condition: JSON) -> date | None:
    return parse_date(condition.get("onsetDateTime")) or parse_date(condition.get("recordedDate"))


async def read_register(client: FhirClient, register: RegisterDefinition) -> RegisterSnapshot:
    """Read a register in full by Condition search over its code set."""
    snapshot = RegisterSnapshot(register.name)
    params = {"code": register.codeset.token_query(), "_count": PAGE_SIZE}
    async for condition in client.search("Condition", params):
        snapshot.conditions_scanned += 1
        if not condition_counts(condition, register):
            continue
        patient_id = reference_id(condition.get("subject"), "Patient")
        if patient_id is None:
            continue
        since, ids = snapshot.members.get(patient_id, (None, []))
        onset = _condition_date(condition)
        if onset is not None and (since is None or onset < since):
            since = onset
        snapshot.members[patient_id] = (since, [*ids, str(condition.get("id"))])
    if register.codeset.resolved_codes:
        await _drop_resolved(client, register, snapshot)
    return snapshot


async def _drop_resolved(
    client: FhirClient, register: RegisterDefinition, snapshot: RegisterSnapshot
) -> None:
    """Remove patients whose latest 'resolved' code is newer than their diagnosis."""
    system = register.codeset.system
    token = ",".join(f"{system}|{c.code}" for c in register.codeset.resolved_codes)
    resolved: dict[str, date] = {}
    async for condition in client.search("Condition", {"code": token, "_count": PAGE_SIZE}):
        snapshot.conditions_scanned += 1
        patient_id = reference_id(condition.get("subject"), "Patient")
        when = _condition_date(condition)
        if patient_id and when and (patient_id not in resolved or when > resolved[patient_id]):
            resolved[patient_id] = when
    for patient_id, when in resolved.items():
        member = snapshot.members.get(patient_id)
        if member and (member[0] is None or when >= member[0]):
            del snapshot.members[patient_id]


async def sync_practice(
    client: FhirClient,
    db: Database,
    practice: str,
    registers: list[RegisterDefinition],
    clock: Clock,
) -> SyncReport:
    """Full read of every enabled register of one practice."""
    report = SyncReport(practice)
    for register in registers:
        snapshot = await read_register(client, register)
        report.conditions_scanned += snapshot.conditions_scanned
        report.left_register[register.name] = store_snapshot(
            db, practice, register.name, snapshot.members, clock
        )
        report.on_register[register.name] = len(snapshot.members)
        report._patients.update(snapshot.members)
        log.info(
            "register synced",
            extra={
                "practice": practice,
                "register": register.name,
                "members": len(snapshot.members),
            },
        )
    return report
