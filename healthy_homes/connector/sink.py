"""Where read Conditions and Patients go: classified, stored by id, membership derived.

Condition search and bulk export feed the same sink, so the register rules do not
depend on how a practice's server hands the data over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from healthy_homes.connector.pages import last_updated, later
from healthy_homes.registers.conditions import (
    condition_ids,
    delete_conditions,
    write_conditions,
    write_statuses,
)
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import MembershipChange, recompute
from healthy_homes.registers.rules import Classified, classify, patient_is_current
from healthy_homes.store.db import Database

JSON = dict[str, Any]


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
        self.seen: set[str] = set()
        self.touched: set[str] = set()
        self.status_changed: set[str] = set()

    def add(self, conditions: Iterable[JSON], patients: Iterable[JSON] = ()) -> None:
        """Store one page (or chunk of ndjson lines); safe to call twice with the same data."""
        found: list[Classified] = []
        for condition in conditions:
            self.scanned += 1
            self.newest = later(self.newest, last_updated(condition))
            item = classify(condition, self.register)
            if item is None:
                continue
            found.append(item)
            if item.role is not None:
                self.seen.add(item.condition_id)
        seen_patients = {
            str(p["id"]): patient_is_current(p)
            for p in patients
            if p.get("resourceType") == "Patient" and p.get("id")
        }
        if not found and not seen_patients:
            return
        with self.db.session() as session:
            self.touched |= write_conditions(
                session, self.practice, self.register.name, found, self.now
            )
            self.status_changed |= write_statuses(session, self.practice, seen_patients, self.now)

    def finish(self, *, delete_unseen: bool) -> MembershipChange:
        """Derive membership: for everyone after a full read, else for touched patients.

        After a complete full read, rows of Conditions the server no longer returned
        (deleted, recoded, moved out of the Group) are removed first.
        """
        with self.db.session() as session:
            if self.full and delete_unseen:
                stale = set(condition_ids(session, self.practice, self.register.name)) - self.seen
                delete_conditions(session, self.practice, self.register.name, stale)
            scope = None if self.full else self.touched | self.status_changed
            return recompute(session, self.practice, self.register.name, scope, self.now)
