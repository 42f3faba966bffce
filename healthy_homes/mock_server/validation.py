"""Validate what clients write with ``fhir.resources`` R4B, as a real server would.

Problems are reported by element path and rule, never with the offending value:
values may be patient data. ``fhir.resources`` does not check required-binding
codes, so the status-like codes the connector writes are checked here
(value sets from https://hl7.org/fhir/R4/).
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from healthy_homes.mock_server.outcome import FhirHttpError

JSON = dict[str, Any]

_REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Flag", "status"): frozenset({"active", "inactive", "entered-in-error"}),
    ("Consent", "status"): frozenset(
        {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
    ),
    ("ServiceRequest", "status"): frozenset(
        {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
    ),
    ("ServiceRequest", "intent"): frozenset(
        {
            "proposal",
            "plan",
            "directive",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        }
    ),
    ("Task", "status"): frozenset(
        {
            "draft",
            "requested",
            "received",
            "accepted",
            "rejected",
            "ready",
            "cancelled",
            "in-progress",
            "on-hold",
            "failed",
            "completed",
            "entered-in-error",
        }
    ),
    ("Task", "intent"): frozenset(
        {
            "unknown",
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        }
    ),
    ("Appointment", "status"): frozenset(
        {
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        }
    ),
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
}


def _issue(path: str, message: str) -> JSON:
    return {"severity": "error", "code": "structure", "diagnostics": message, "expression": [path]}


def validate_resource(resource: Any, expected_type: str | None = None) -> JSON:
    """Check a client's resource; raise FhirHttpError 400 or 422 naming each problem."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirHttpError(400, "body is not a FHIR resource (no resourceType)")
    type_ = resource["resourceType"]
    if expected_type is not None and type_ != expected_type:
        raise FhirHttpError(
            400, f"resourceType {type_} does not match the URL's resource type {expected_type}"
        )
    try:
        model = get_fhir_model_class(type_)
    except ValueError:
        raise FhirHttpError(400, f"{type_} is not a FHIR R4 resource type") from None
    issues: list[JSON] = []
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            path = ".".join(str(p) for p in (type_, *err["loc"]))
            issues.append(_issue(path, f"{path}: {err['msg']} ({err['type']})"))
    for (rtype, element), allowed in _REQUIRED_CODES.items():
        if rtype == type_ and element in resource and resource[element] not in allowed:
            path = f"{type_}.{element}"
            issues.append(_issue(path, f"{path}: code is not in the required value set"))
    if issues:
        raise FhirHttpError(422, issues[0]["diagnostics"], issues=issues)
    return resource
