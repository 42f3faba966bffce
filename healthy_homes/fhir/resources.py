"""Small helpers for reading FHIR JSON and writing validated resources."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.resource import Resource

from healthy_homes.errors import FhirResponseError

JSON = dict[str, Any]


def to_json(resource: Resource) -> JSON:
    """A validated ``fhir.resources`` model as FHIR JSON."""
    data: JSON = resource.model_dump(mode="json", exclude_none=True)
    return data


def fhir_datetime(value: datetime) -> str:
    """An aware datetime as a FHIR dateTime/instant (UTC written ``Z``, as fhir.resources does)."""
    if value.utcoffset() is None:
        # FHIR requires a zone whenever a time is given; guessing one would shift the time.
        raise ValueError("a FHIR dateTime with a time needs a time zone")
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def reference_id(reference: JSON | None, resource_type: str) -> str | None:
    """The logical id in a reference like ``Patient/123`` (relative or absolute)."""
    if not reference or not isinstance(reference.get("reference"), str):
        return None
    parts: list[str] = str(reference["reference"]).rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == resource_type and parts[-2] == "_history":
        return parts[-3]
    return None


def identifier_value(resource: JSON, system: str) -> str | None:
    """The first identifier value in ``system``."""
    for ident in resource.get("identifier") or []:
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def codings(concept: JSON | None) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a CodeableConcept."""
    if not concept:
        return []
    return [(c.get("system"), c.get("code")) for c in concept.get("coding") or []]


def first_code(concept: JSON | None, system: str | None = None) -> str | None:
    """The first code of a CodeableConcept, optionally in one system."""
    for sys, code in codings(concept):
        if code and (system is None or sys == system):
            return code
    return None


def parse_date(value: Any) -> date | None:
    """A FHIR date or dateTime as a date (partial dates round down)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return date(int(value), 1, 1)
        if len(value) == 7:
            return date(int(value[:4]), int(value[5:7]), 1)
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def parse_instant(value: Any) -> datetime | None:
    """A FHIR instant (e.g. meta.lastUpdated) as an aware datetime."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def require(resource: JSON, resource_type: str) -> JSON:
    """Check a server answer is the resource type we asked for."""
    if resource.get("resourceType") != resource_type:
        raise FhirResponseError(f"expected a {resource_type}, got {resource.get('resourceType')}")
    return resource
