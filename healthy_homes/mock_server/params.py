"""The search parameters the mock server supports, and how values are pulled out.

One table drives search, the indexes and the CapabilityStatement, so what the
server advertises is exactly what it does. Names and paths follow
https://hl7.org/fhir/R4/searchparameter-registry.html; a few extra token
parameters (``Flag.status``, ``Flag.code``) are marked as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from healthy_homes.mock_server.fhirdates import MAX_US, MIN_US, DateFormatError, parse_range

ParamType = Literal["token", "reference", "date", "string"]
#: Indexes are named by the paths they cover.
IndexName = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type."""

    name: str
    type: ParamType
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()
    documentation: str = ""

    @property
    def indexed(self) -> bool:
        """Token and reference values are kept in an index for fast lookup."""
        return self.type in ("token", "reference")


def _p(
    name: str, type_: ParamType, *paths: str, targets: tuple[str, ...] = (), doc: str = ""
) -> SearchParam:
    return SearchParam(name, type_, paths, targets, doc)


_ANY = (
    "Patient",
    "Group",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "CareTeam",
    "HealthcareService",
    "Location",
    "Device",
)
_IDENT = _p("identifier", "token", "identifier")


def _subject(*targets: str) -> list[SearchParam]:
    return [
        _p("subject", "reference", "subject", targets=targets),
        _p("patient", "reference", "subject", targets=("Patient",)),
    ]


SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {}
_TABLE: dict[str, list[SearchParam]] = {
    "Patient": [
        _IDENT,
        _p("birthdate", "date", "birthDate"),
        _p("gender", "token", "gender"),
        _p("active", "token", "active"),
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("address-postalcode", "string", "address.postalCode"),
        _p(
            "general-practitioner",
            "reference",
            "generalPractitioner",
            targets=("Organization", "Practitioner", "PractitionerRole"),
        ),
        _p("death-date", "date", "deceasedDateTime"),
    ],
    "Condition": [
        _IDENT,
        _p("code", "token", "code"),
        *_subject("Patient", "Group"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("category", "token", "category"),
        _p("recorded-date", "date", "recordedDate"),
        _p("onset-date", "date", "onsetDateTime", "onsetPeriod"),
        _p("abatement-date", "date", "abatementDateTime", "abatementPeriod"),
    ],
    "Appointment": [
        _IDENT,
        _p("date", "date", "start"),
        _p("status", "token", "status"),
        _p("patient", "reference", "participant.actor", targets=("Patient",)),
        _p("actor", "reference", "participant.actor", targets=_ANY),
        _p("practitioner", "reference", "participant.actor", targets=("Practitioner",)),
        _p("service-type", "token", "serviceType"),
        _p("appointment-type", "token", "appointmentType"),
    ],
    "Flag": [
        _IDENT,
        *_subject(*_ANY),
        _p("date", "date", "period"),
        _p("author", "reference", "author", targets=_ANY),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
        _p("status", "token", "status", doc="Extension to the R4 registry."),
        _p("code", "token", "code", doc="Extension to the R4 registry."),
        _p("category", "token", "category", doc="Extension to the R4 registry."),
    ],
    "Consent": [
        _IDENT,
        _p("patient", "reference", "patient", targets=("Patient",)),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("scope", "token", "scope"),
        _p("date", "date", "dateTime"),
        _p("organization", "reference", "organization", targets=("Organization",)),
        _p("action", "token", "provision.action"),
    ],
    "ServiceRequest": [
        _IDENT,
        *_subject("Patient", "Group", "Location", "Device"),
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("code", "token", "code"),
        _p("category", "token", "category"),
        _p("authored", "date", "authoredOn"),
        _p("requester", "reference", "requester", targets=_ANY),
        _p("performer", "reference", "performer", targets=_ANY),
    ],
    "Task": [
        _IDENT,
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("code", "token", "code"),
        _p("business-status", "token", "businessStatus"),
        _p("focus", "reference", "focus", targets=("ServiceRequest",)),
        _p("subject", "reference", "for", targets=_ANY),
        _p("patient", "reference", "for", targets=("Patient",)),
        _p("owner", "reference", "owner", targets=_ANY),
        _p("requester", "reference", "requester", targets=_ANY),
        _p("based-on", "reference", "basedOn", targets=("ServiceRequest",)),
        _p("modified", "date", "lastModified"),
        _p("authored-on", "date", "authoredOn"),
    ],
    "Organization": [
        _IDENT,
        _p("name", "string", "name"),
        _p("active", "token", "active"),
    ],
    "Group": [
        _IDENT,
        _p("type", "token", "type"),
        _p("actual", "token", "actual"),
        _p("code", "token", "code"),
        _p("member", "reference", "member.entity", targets=("Patient", "Practitioner")),
    ],
    "Practitioner": [
        _IDENT,
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
    ],
    "PractitionerRole": [
        _IDENT,
        _p("practitioner", "reference", "practitioner", targets=("Practitioner",)),
        _p("organization", "reference", "organization", targets=("Organization",)),
    ],
    "Encounter": [
        _IDENT,
        *_subject("Patient", "Group"),
        _p("status", "token", "status"),
        _p("date", "date", "period"),
    ],
    "Observation": [
        _IDENT,
        *_subject("Patient", "Group", "Location", "Device"),
        _p("code", "token", "code"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("date", "date", "effectiveDateTime", "effectivePeriod"),
    ],
    "Procedure": [
        _IDENT,
        *_subject("Patient", "Group"),
        _p("code", "token", "code"),
        _p("status", "token", "status"),
        _p("date", "date", "performedDateTime", "performedPeriod"),
    ],
    "CarePlan": [
        _IDENT,
        *_subject("Patient", "Group"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
    ],
    "QuestionnaireResponse": [
        _IDENT,
        *_subject(*_ANY),
        _p("status", "token", "status"),
        _p("authored", "date", "authored"),
    ],
    "HealthcareService": [
        _IDENT,
        _p("name", "string", "name"),
        _p("organization", "reference", "providedBy", targets=("Organization",)),
    ],
    "Location": [_IDENT, _p("name", "string", "name")],
    "Endpoint": [_IDENT, _p("name", "string", "name")],
    "RelatedPerson": [_IDENT, _p("patient", "reference", "patient", targets=("Patient",))],
    "MessageHeader": [],
}
for _type, _params in _TABLE.items():
    SEARCH_PARAMS[_type] = {p.name: p for p in _params}

RESOURCE_TYPES: tuple[str, ...] = tuple(sorted(SEARCH_PARAMS))

#: ``_include`` targets: ``Type:param`` for every reference parameter.
INCLUDES: dict[str, tuple[str, ...]] = {
    t: tuple(f"{t}:{p.name}" for p in ps.values() if p.type == "reference")
    for t, ps in SEARCH_PARAMS.items()
}


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        if isinstance(node, list):
            yield from node
        elif node is not None:
            yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts)
    elif isinstance(node, dict):
        yield from _walk(node.get(parts[0]), parts[1:])


def raw_values(resource: dict[str, Any], param: SearchParam) -> Iterator[Any]:
    """Every element the parameter's paths reach in the resource."""
    for path in param.paths:
        yield from _walk(resource, path.split("."))


def token_values(resource: dict[str, Any], param: SearchParam) -> Iterator[tuple[str | None, str]]:
    """``(system, code)`` pairs: codes, Codings, CodeableConcepts, Identifiers, booleans."""
    for value in raw_values(resource, param):
        if isinstance(value, bool):
            yield None, "true" if value else "false"
        elif isinstance(value, str):
            yield None, value
        elif isinstance(value, dict):
            if "coding" in value:
                for coding in value.get("coding") or []:
                    if isinstance(coding, dict) and coding.get("code") is not None:
                        yield coding.get("system"), str(coding["code"])
            elif "code" in value:
                yield value.get("system"), str(value["code"])
            elif "value" in value:
                yield value.get("system"), str(value["value"])


def normalise_reference(reference: str, base_url: str | None = None) -> str:
    """``Type/id`` for relative or own-base absolute references, without ``_history``."""
    if base_url and reference.startswith(base_url.rstrip("/") + "/"):
        reference = reference[len(base_url.rstrip("/")) + 1 :]
    if "/_history/" in reference:
        reference = reference.split("/_history/", 1)[0]
    return reference


def reference_values(resource: dict[str, Any], param: SearchParam) -> Iterator[str]:
    """Normalised reference strings the parameter reaches."""
    for value in raw_values(resource, param):
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            yield normalise_reference(value["reference"])


def date_values(resource: dict[str, Any], param: SearchParam) -> Iterator[tuple[int, int]]:
    """Ranges in UTC microseconds; a Period's open end is unbounded."""
    for value in raw_values(resource, param):
        try:
            if isinstance(value, str):
                yield parse_range(value)
            elif isinstance(value, dict) and ("start" in value or "end" in value):
                lo = parse_range(value["start"])[0] if value.get("start") else MIN_US
                hi = parse_range(value["end"])[1] if value.get("end") else MAX_US
                yield lo, hi
        except DateFormatError:
            continue


_STRING_PARTS = ("text", "family", "given", "prefix", "suffix", "line", "city", "district")
_STRING_PARTS_2 = ("state", "postalCode", "country")


def string_values(resource: dict[str, Any], param: SearchParam) -> Iterator[str]:
    """Strings, and the parts of HumanName and Address values."""
    for value in raw_values(resource, param):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key in (*_STRING_PARTS, *_STRING_PARTS_2):
                part = value.get(key)
                if isinstance(part, str):
                    yield part
                elif isinstance(part, list):
                    yield from (p for p in part if isinstance(p, str))


def _leaves(node: Any, parts: tuple[str, ...]) -> list[Any]:
    """Values at a dotted path, flattening lists (a loop: this runs on every write)."""
    if len(parts) == 1:
        value = node.get(parts[0]) if isinstance(node, dict) else None
        if value is None:
            return []
        return value if isinstance(value, list) else [value]
    current = [node]
    for part in parts:
        step = []
        for item in current:
            if isinstance(item, dict):
                value = item.get(part)
                if isinstance(value, list):
                    step.extend(value)
                elif value is not None:
                    step.append(value)
            elif isinstance(item, list):
                for sub in item:
                    if isinstance(sub, dict) and sub.get(part) is not None:
                        step.append(sub[part])
        if not step:
            return step
        current = step
    return current


def _index_plan(resource_type: str) -> list[tuple[IndexName, bool, list[tuple[str, ...]]]]:
    plan, done = [], set()
    for param in SEARCH_PARAMS.get(resource_type, {}).values():
        if param.indexed and param.paths not in done:
            done.add(param.paths)
            split = [tuple(p.split(".")) for p in param.paths]
            plan.append((param.paths, param.type == "token", split))
    return plan


_INDEX_PLANS = {t: _index_plan(t) for t in SEARCH_PARAMS}


def index_keys(resource_type: str, resource: dict[str, Any]) -> list[tuple[IndexName, str]]:
    """``(index, key)`` pairs: bare token codes and normalised references.

    Parameters that share paths (``Condition.subject`` and ``Condition.patient``)
    share one index.
    """
    out: list[tuple[IndexName, str]] = []
    for name, is_token, paths in _INDEX_PLANS.get(resource_type, ()):
        keys: set[str] = set()
        for parts in paths:
            for value in _leaves(resource, parts):
                if is_token:
                    if isinstance(value, bool):
                        keys.add("true" if value else "false")
                    elif isinstance(value, str):
                        keys.add(value)
                    elif isinstance(value, dict):
                        if "coding" in value:
                            for coding in value["coding"] or ():
                                if isinstance(coding, dict) and coding.get("code") is not None:
                                    keys.add(str(coding["code"]))
                        elif "code" in value:
                            keys.add(str(value["code"]))
                        elif "value" in value:
                            keys.add(str(value["value"]))
                elif isinstance(value, dict) and isinstance(value.get("reference"), str):
                    keys.add(normalise_reference(value["reference"]))
        out.extend((name, key) for key in keys)
    return out
