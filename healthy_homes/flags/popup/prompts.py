"""What the page shows for one arrival: who, when, why, as plain strings.

The browser puts every one of these strings in the page as text (``textContent``),
never as HTML: a patient name is data, whatever characters it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from healthy_homes.fhir.client import JSON
from healthy_homes.flags.popup.watch import Arrival
from healthy_homes.store.models import FlagRecord

STATUS_TEXT = {"arrived": "arrived", "checked-in": "checked in"}


@dataclass(frozen=True)
class Prompt:
    """One flagged patient in the building, ready for the page."""

    arrival: Arrival
    name: str
    birth_date: str
    time: str
    reasons: tuple[str, ...]
    priority: int

    @property
    def flag_id(self) -> str:
        """The flag this prompt is about (the page's key for it)."""
        return self.arrival.flag_id

    def for_page(self) -> dict[str, Any]:
        """The JSON the page receives (no internal patient or appointment ids)."""
        return {
            "flagId": self.flag_id,
            "name": self.name,
            "birthDate": self.birth_date,
            "time": self.time,
            "status": STATUS_TEXT.get(self.arrival.status, self.arrival.status),
            "reasons": list(self.reasons),
            "priority": self.priority,
        }


def display_name(patient: JSON) -> str:
    """The patient's usual or official name, as a clinician would read it."""
    names = patient.get("name") or []
    chosen = next((n for n in names if n.get("use") in ("usual", "official")), None)
    chosen = chosen or (names[0] if names else {})
    if chosen.get("text"):
        return str(chosen["text"])
    given = " ".join(str(g) for g in chosen.get("given") or [])
    family = str(chosen.get("family") or "")
    return " ".join(part for part in (given, family.upper()) if part) or "Name not recorded"


def long_date(value: Any) -> str:
    """A FHIR date as '7 March 1948' ('' when missing or partial)."""
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return ""
    return f"{day.day} {day:%B %Y}"


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """'09:40' in the practice's time zone."""
    return value.astimezone(zone).strftime("%H:%M") if value else ""


def build_prompt(arrival: Arrival, flag: FlagRecord, patient: JSON, zone: ZoneInfo) -> Prompt:
    """A prompt from the arrival, its flag and the patient's record."""
    return Prompt(
        arrival=arrival,
        name=display_name(patient),
        birth_date=long_date(patient.get("birthDate")),
        time=local_time(arrival.start, zone),
        reasons=tuple(flag.reasons or ()),
        priority=flag.priority,
    )
