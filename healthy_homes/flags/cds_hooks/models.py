"""CDS Hooks 2.0 wire formats (https://cds-hooks.hl7.org/2.0/).

Incoming bodies (requests, feedback) tolerate fields we do not know (the spec
reserves ``extension``); what we send is strict, and optional fields are omitted
rather than null or empty, as the spec requires ("JSON elements SHALL NOT be null").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

JSON = dict[str, Any]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> str:
        """The JSON to send: optional fields that are unset are left out."""
        return self.model_dump_json(exclude_none=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="allow")


class Coding(_Out):
    """A code (https://cds-hooks.hl7.org/2.0/#coding); override reasons need ``display``."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(min_length=1)
    system: str | None = None
    display: str | None = None


# -- discovery (https://cds-hooks.hl7.org/2.0/#discovery) -------------------------------


class ServiceDescriptor(_Out):
    """One service in the discovery response (https://cds-hooks.hl7.org/2.0/#response)."""

    hook: str
    id: str
    description: str
    title: str | None = None
    prefetch: dict[str, str] | None = None


class DiscoveryResponse(_Out):
    """``GET {base}/cds-services`` (https://cds-hooks.hl7.org/2.0/#discovery)."""

    services: list[ServiceDescriptor]


# -- calling a service (https://cds-hooks.hl7.org/2.0/#calling-a-cds-service) -----------


class FhirAuthorization(_In):
    """A bearer token for the EHR's FHIR server (https://cds-hooks.hl7.org/2.0/#fhir-resource-access)."""

    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str


class HookRequest(_In):
    """The body the EHR POSTs (https://cds-hooks.hl7.org/2.0/#http-request_1)."""

    hook: str
    hookInstance: UUID
    context: JSON
    fhirServer: AnyHttpUrl | None = None
    fhirAuthorization: FhirAuthorization | None = None
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


class PatientViewContext(_In):
    """patient-view (https://cds-hooks.hl7.org/hooks/patient-view/)."""

    userId: str
    patientId: str = Field(min_length=1, max_length=64)
    encounterId: str | None = None


class AppointmentBookContext(_In):
    """appointment-book (https://cds-hooks.hl7.org/hooks/appointment-book/)."""

    userId: str
    patientId: str = Field(min_length=1, max_length=64)
    encounterId: str | None = None
    appointments: JSON

    @field_validator("appointments")
    @classmethod
    def _bundle(cls, value: JSON) -> JSON:
        if value.get("resourceType") != "Bundle":
            raise ValueError("appointments must be a FHIR Bundle")
        return value


class EncounterStartContext(_In):
    """encounter-start (https://cds-hooks.hl7.org/hooks/encounter-start/)."""

    userId: str
    patientId: str = Field(min_length=1, max_length=64)
    encounterId: str


# -- the response (https://cds-hooks.hl7.org/2.0/#cds-service-response) -----------------


class Action(_Out):
    """A suggested change (https://cds-hooks.hl7.org/2.0/#action)."""

    type: Literal["create", "update", "delete"]
    description: str
    resource: JSON | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action carries the resource")
        if self.type == "delete" and self.resourceId is None:
            raise ValueError("a delete action names resourceId")
        return self


class Suggestion(_Out):
    """A choice on a card (https://cds-hooks.hl7.org/2.0/#suggestion)."""

    label: str
    uuid: UUID | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = Field(default=None, min_length=1)


class Link(_Out):
    """A link to an app or page (https://cds-hooks.hl7.org/2.0/#link)."""

    label: str
    url: AnyHttpUrl
    type: Literal["absolute", "smart"]
    appContext: str | None = None

    @model_validator(mode="after")
    def _context_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only valid on smart links")
        return self


class Source(_Out):
    """Where a card's guidance comes from (https://cds-hooks.hl7.org/2.0/#source)."""

    label: str
    url: AnyHttpUrl | None = None
    icon: AnyHttpUrl | None = None
    topic: Coding | None = None


class Card(_Out):
    """One card (https://cds-hooks.hl7.org/2.0/#card-attributes)."""

    uuid: UUID | None = None
    summary: str = Field(min_length=1, max_length=139)  # "<140-character summary"
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _spec_rules(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when there are suggestions")
        if any(not reason.display for reason in self.overrideReasons or []):
            raise ValueError("every override reason needs a display")
        return self


class CdsResponse(_Out):
    """The answer to a hook call: cards, perhaps none (https://cds-hooks.hl7.org/2.0/#http-response)."""

    cards: list[Card]
    systemActions: list[Action] | None = Field(default=None, min_length=1)


# -- feedback (https://cds-hooks.hl7.org/2.0/#feedback) ---------------------------------


class AcceptedSuggestion(_In):
    """Which suggestion was taken (https://cds-hooks.hl7.org/2.0/#suggestion-accepted)."""

    id: str


class OverrideReason(_In):
    """Why a card was overridden (https://cds-hooks.hl7.org/2.0/#overridereason)."""

    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class Feedback(_In):
    """What the user did with one card (https://cds-hooks.hl7.org/2.0/#feedback)."""

    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required for an accepted outcome")
        return self


class FeedbackRequest(_In):
    """``POST {base}/cds-services/{id}/feedback`` (https://cds-hooks.hl7.org/2.0/#feedback)."""

    feedback: list[Feedback] = Field(min_length=1)
