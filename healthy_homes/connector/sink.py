"""Where read Conditions and Patients go: classified, stored by id, membership derived.

Condition search and bulk export feed the same sink, so the register rules do not
depend on how a practice's server hands the data over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from healthy_homes.connector.pages import later, newest_updated
from healthy_homes.registers.conditions import (
    delete_unwritten,
    statuses,
    write_conditions,
    write_statuses,
)
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import MembershipChange, apply_members, recompute
from healthy_homes.registers.rules import (
    Classified,
    Member,
    Role,
    classify,
    membership,
    patient_is_current,
)
from healthy_homes.store.db import Database

JSON = dict[str, Any]
#: Rows kept before they are written: a few pages' worth, so memory stays bounded while
#: a 10k practice costs one transaction per register (each costs more than its rows).
FLUSH_AT = 2000


@dataclass
class RegisterRead:
    """The outcome of reading one register once."""

    register: str
    full: bool
    scanned: int = 0
    change: MembershipChange = field(default_factory=MembershipChange)
    watermark: datetime | None = None
    server_time: datetime | None = None
    status_changed: set[str] = field(default_factory=set)
    resource_id: str | None = None
    #: Patients whose membership was worked out from a status this run may still change
    #: (not yet answered when the read ended); None: any patient's (read from the store).
    assumed: set[str] | None = None


class ConditionSink:
    """Stores one register's Conditions page by page; derives membership at the end."""

    def __init__(
        self,
        db: Database,
        practice: str,
        register: RegisterDefinition,
        now: datetime,
        *,
        full: bool,
    ) -> None:
        self.db = db
        self.practice = practice
        self.register = register
        self.now = now
        self.full = full
        self.scanned = 0
        self.newest: datetime | None = None
        # Patients with a Condition playing a role, not yet handed over by take_subjects.
        self._subjects: set[str] = set()
        self.touched: set[str] = set()
        self.status_changed: set[str] = set()
        self.assumed: set[str] | None = None
        self._found: list[Classified] = []
        self._patients: dict[str, bool] = {}
        # Full reads keep each patient's roles (ids and dates, register-sized), so
        # membership is derived without reading back what was just written.
        self._roles: dict[str, dict[str, tuple[Role, date | None]]] = {}

    def add(self, conditions: Iterable[JSON], patients: Iterable[JSON] = ()) -> datetime | None:
        """Classify one page (or chunk of ndjson lines); safe to repeat with the same data.

        Returns the newest ``meta.lastUpdated`` among the Conditions. Nothing is written
        here: see :meth:`flush` and :meth:`finish`.
        """
        conditions = list(conditions)
        newest = newest_updated(conditions)
        self.scanned += len(conditions)
        for condition in conditions:
            item = classify(condition, self.register)
            if item is None:
                continue
            self._found.append(item)
            if item.role is not None:
                self._subjects.add(item.patient_id)
                if self.full:
                    roles = self._roles.setdefault(item.patient_id, {})
                    roles[item.condition_id] = (item.role, item.noted)
        for p in patients:
            if p.get("resourceType") == "Patient" and p.get("id"):
                self._patients[str(p["id"])] = patient_is_current(p)
        self.newest = later(self.newest, newest)
        return newest

    def take_subjects(self) -> set[str]:
        """Patients with a Condition playing a role, added since the last call."""
        subjects, self._subjects = self._subjects, set()
        return subjects

    def due(self) -> bool:
        """Whether :meth:`flush` would store now (a few pages' worth are waiting)."""
        return len(self._found) + len(self._patients) >= FLUSH_AT

    def flush(self) -> None:
        """Store what was added so far, in one transaction, once it is a few pages' worth."""
        if self.due():
            with self.db.session() as session:
                self._write(session)

    def add_statuses(self, found: dict[str, bool]) -> None:
        """Take patients' current/not-current status, looked up elsewhere."""
        self._patients.update(found)

    def _write(self, session: Session) -> None:
        self.touched |= write_conditions(
            session,
            self.practice,
            self.register.name,
            self._found,
            self.now,
            previous=not self.full,
        )
        self.status_changed |= write_statuses(session, self.practice, self._patients, self.now)
        self._found, self._patients = [], {}

    def finish(
        self, *, delete_unseen: bool, known: Mapping[str, bool] | None = None
    ) -> MembershipChange:
        """Derive membership: for everyone after a full read, else for touched patients.

        After a complete full read, rows of Conditions the server no longer returned
        (deleted, recoded, moved out of the Group) are removed first. ``known`` holds
        statuses looked up in this run (by any register), fresher than the store's.
        """
        # One transaction for the rest of the read: commits cost more than the writes.
        with self.db.session() as session:
            self._write(session)
            if self.full and delete_unseen:
                delete_unwritten(session, self.practice, self.register.name, self.now)
                return self._apply_roles(session, known or {})
            scope = None if self.full else self.touched | self.status_changed
            return recompute(session, self.practice, self.register.name, scope, self.now)

    def _apply_roles(self, session: Session, known: Mapping[str, bool]) -> MembershipChange:
        """After a complete full read: the stored rows are exactly the roles seen."""
        unknown = [p for p in self._roles if p not in known]
        self.assumed = set(unknown)
        current = statuses(session, self.practice, unknown) if unknown else {}
        current.update((p, known[p]) for p in self._roles if p in known)
        desired: dict[str, Member] = {}
        for patient_id, found in self._roles.items():
            roles = [(c, role, noted) for c, (role, noted) in found.items()]
            member = membership(roles, current=current.get(patient_id, True))
            if member is not None:
                desired[patient_id] = member
        return apply_members(session, self.practice, self.register.name, desired, None, self.now)
