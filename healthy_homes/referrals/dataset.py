"""The referral minimum dataset: the ONLY patient data that leaves the practice.

Defined once, here. Register membership and diagnoses are deliberately absent: the
housing service learns that the GP thinks a home visit could help, not why. The
referral form adds only what the housing team needs and the GP record lacks; it
travels as ``ServiceRequest.note`` lines (see :meth:`ReferralForm.note_lines`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import identifier_value
from healthy_homes.fhir.systems import NHS_NUMBER

REFERRAL_REASON = "Home health and safety assessment (cold, damp, hazards)"


class Tenure(StrEnum):
    """Who owns the home: eligibility differs (North Tyneside's team covers private homes)."""

    OWNER_OCCUPIER = "owner-occupier"
    PRIVATE_RENTED = "private-rented"
    SOCIAL = "social"


class Concern(StrEnum):
    """What worries the patient about their home."""

    COLD_OR_DAMP = "cold-or-damp"
    FALL_HAZARDS = "fall-hazards"
    REPAIRS = "repairs"
    ENERGY_BILLS = "energy-bills"
    SAFETY = "safety"


class ContactMethod(StrEnum):
    """How the housing team should get in touch."""

    PHONE = "phone"
    TEXT = "text"
    LETTER = "letter"


TENURE_TEXT = {
    Tenure.OWNER_OCCUPIER: "owner-occupier",
    Tenure.PRIVATE_RENTED: "private rented",
    Tenure.SOCIAL: "social housing",
}
CONCERN_TEXT = {
    Concern.COLD_OR_DAMP: "cold or damp",
    Concern.FALL_HAZARDS: "trip and fall hazards",
    Concern.REPAIRS: "repairs",
    Concern.ENERGY_BILLS: "energy bills",
    Concern.SAFETY: "safety and security",
}
CONTACT_TEXT = {
    ContactMethod.PHONE: "phone call",
    ContactMethod.TEXT: "text message",
    ContactMethod.LETTER: "letter",
}


class ReferralForm(BaseModel):
    """The referral form: answers the GP record does not hold, every one optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenure: Tenure | None = None
    concerns: list[Concern] = Field(default_factory=list, max_length=len(Concern))
    contact_method: ContactMethod | None = None
    contact_times: str | None = Field(default=None, max_length=200)
    staff_risks: str | None = Field(
        default=None, max_length=500, description="risks to visiting staff (dogs, smoking...)"
    )
    staff_risks_consented: bool = Field(
        default=False, description="the patient agreed that staff risks may be shared"
    )
    # Register membership is health data: it leaves only where the practice has turned
    # on ``share_health_reason`` and the patient agreed (see ``allow_health_reason``).
    health_reason: str | None = Field(
        default=None, max_length=300, description="why the patient was flagged, e.g. a register"
    )
    health_reason_consented: bool = Field(
        default=False, description="the patient agreed that the health reason may be shared"
    )

    @field_validator("concerns")
    @classmethod
    def _distinct(cls, value: list[Concern]) -> list[Concern]:
        return list(dict.fromkeys(value))

    @field_validator("contact_times", "staff_risks", "health_reason")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None

    @model_validator(mode="after")
    def _risks_only_with_consent(self) -> ReferralForm:
        if self.staff_risks and not self.staff_risks_consented:
            raise ValueError("risks to visiting staff are shared only with the patient's consent")
        if self.health_reason and not self.health_reason_consented:
            raise ValueError("the health reason is shared only with the patient's consent")
        return self

    def note_lines(self) -> list[str]:
        """The answers as the ``ServiceRequest.note`` texts the housing service receives."""
        lines = []
        if self.tenure:
            lines.append(f"Tenure: {TENURE_TEXT[self.tenure]}")
        if self.concerns:
            lines.append("Main concerns: " + "; ".join(CONCERN_TEXT[c] for c in self.concerns))
        if self.contact_method:
            lines.append(f"Best contact: {CONTACT_TEXT[self.contact_method]}")
        if self.contact_times:
            lines.append(f"Best times: {self.contact_times}")
        if self.staff_risks and self.staff_risks_consented:
            lines.append(f"Risks to visiting staff (shared with consent): {self.staff_risks}")
        if self.health_reason and self.health_reason_consented:
            lines.append(f"Health reason (shared with consent): {self.health_reason}")
        return lines


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
    referral_form: ReferralForm | None = None


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


def allow_health_reason(form: ReferralForm | None, *, practice_allows: bool) -> None:
    """Refuse a health reason the practice has not turned on (``share_health_reason``)."""
    if form is not None and form.health_reason and not practice_allows:
        raise ValueError(
            "this practice does not share a health reason with housing; "
            "expected no health_reason unless [[practices]] share_health_reason = true"
        )


def with_form(dataset: dict[str, Any], form: ReferralForm | None) -> dict[str, Any]:
    """A stored dataset (JSON) with the referral form's answers put in (or taken out)."""
    updated = MinimumDataset.model_validate(dataset).model_copy(update={"referral_form": form})
    return updated.model_dump(mode="json")


def from_patient(
    patient: JSON, *, practice_ods: str, referrer: str, form: ReferralForm | None = None
) -> MinimumDataset:
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
        "referral_form": form,
    }
    return MinimumDataset.model_validate(data)
