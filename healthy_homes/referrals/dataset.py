"""The referral minimum dataset: the ONLY patient data that leaves the practice.

Defined once, here. Register membership and diagnoses are deliberately absent: the
housing service learns that the GP thinks a home visit could help, not why.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import identifier_value
from healthy_homes.fhir.systems import NHS_NUMBER

REFERRAL_REASON = "Home health and safety assessment (cold, damp, hazards)"


class MinimumDataset(BaseModel):
    """What the housing service needs to contact the patient and act on the referral."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nhs_number: str
    given_name: str
    family_name: str
    birth_date: str | None
    address_lines: list[str]
    city: str | None
    postcode: str | None
    phone: str | None
    practice_ods: str
    referrer: str
    reason: str = REFERRAL_REASON


def _home_address(patient: JSON) -> JSON:
    addresses = patient.get("address") or [{}]
    for address in addresses:
        if address.get("use") == "home":
            return dict(address)
    return dict(addresses[0])


def _official_name(patient: JSON) -> JSON:
    names = patient.get("name") or [{}]
    for name in names:
        if name.get("use") in ("official", "usual"):
            return dict(name)
    return dict(names[0])


def _phone(patient: JSON) -> str | None:
    for telecom in patient.get("telecom") or []:
        if telecom.get("system") == "phone" and telecom.get("value"):
            return str(telecom["value"])
    return None


def from_patient(patient: JSON, *, practice_ods: str, referrer: str) -> MinimumDataset:
    """Extract the minimum dataset from the practice's Patient resource."""
    name = _official_name(patient)
    address = _home_address(patient)
    nhs = identifier_value(patient, NHS_NUMBER)
    if nhs is None:
        raise ValueError("patient has no NHS number; expected an identifier in " + NHS_NUMBER)
    data: dict[str, Any] = {
        "nhs_number": nhs,
        "given_name": " ".join(name.get("given") or []),
        "family_name": name.get("family") or "",
        "birth_date": patient.get("birthDate"),
        "address_lines": list(address.get("line") or []),
        "city": address.get("city"),
        "postcode": address.get("postalCode"),
        "phone": _phone(patient),
        "practice_ods": practice_ods,
        "referrer": referrer,
    }
    return MinimumDataset.model_validate(data)
