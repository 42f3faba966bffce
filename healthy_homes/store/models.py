"""Tables. Only what flags and referrals need is kept.

Register membership holds the practice's own FHIR logical ids, never names or NHS
numbers; the identifiable referral dataset exists only for consented patients.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from healthy_homes.store.types import EncryptedJSON, EncryptedText, UTCDateTime


def _uuid() -> str:
    return str(uuid.uuid4())


def _ts(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


def _sealed_text(aad: str, *, nullable: bool = True) -> Any:
    # Identifiable free text: encrypted at rest, bound to its table.column (store/types.py).
    column: Column[str] = Column(EncryptedText(aad), nullable=nullable)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


def _sealed_json(aad: str) -> Any:
    return Field(default_factory=dict, sa_column=Column(EncryptedJSON(aad)))


def _nhs_number_hash() -> Any:
    return Field(
        default=None,
        index=True,
        max_length=64,
        description="keyed hash of the dataset's NHS number (store/lookups.py), for lookups",
    )


class RegisterMembership(SQLModel, table=True):
    """One patient on one register at one practice, as last seen on the practice server."""

    __tablename__ = "register_membership"
    __table_args__ = (UniqueConstraint("practice_ods", "register_name", "patient_id"),)

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(max_length=10)  # the unique key leads with it
    register_name: str = Field(max_length=40)
    patient_id: str = Field(index=True, max_length=64, description="practice FHIR logical id")
    since: date | None = Field(default=None, description="earliest onset/recorded date seen")
    condition_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    active: bool = True
    updated_at: datetime = _ts(nullable=False)


class FlagStatus(StrEnum):
    """Where a flag is in its lifecycle."""

    RAISED = "raised"
    SHOWN = "shown"
    SNOOZED = "snoozed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_APPROPRIATE = "not-appropriate"
    DISMISSED = "dismissed"
    RETIRED = "retired"


#: Flags still waiting for the clinician; a snoozed one comes back at the next appointment.
OPEN_FLAG_STATUSES = (FlagStatus.RAISED, FlagStatus.SHOWN, FlagStatus.SNOOZED)
#: What the clinician can conclude; each suppresses new flags for a while (flags/rules.py).
OUTCOME_FLAG_STATUSES = (
    FlagStatus.ACCEPTED,
    FlagStatus.DECLINED,
    FlagStatus.NOT_APPROPRIATE,
    FlagStatus.DISMISSED,
)


class FlagRecord(SQLModel, table=True):
    """A prompt raised for a clinician; its id is our identifier on the FHIR Flag."""

    __tablename__ = "flag"
    __table_args__ = (Index("ix_flag_practice_patient", "practice_ods", "patient_id"),)

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    practice_ods: str = Field(index=True, max_length=10)
    patient_id: str = Field(index=True, max_length=64)
    registers: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    rule_set_version: str = Field(max_length=40)
    status: str = Field(default=FlagStatus.RAISED, max_length=20, index=True)
    fhir_flag_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    # -- lifecycle (migration 0003) --
    priority: int = Field(
        default=0, description="higher is asked first (several registers, frailty)"
    )
    fhir_status: str | None = Field(
        default=None, max_length=20, description="status last written to the FHIR Flag"
    )
    shown_at: datetime | None = _ts(nullable=True)
    outcome: str | None = Field(default=None, max_length=20, description="the last outcome")
    outcome_reason: str | None = _sealed_text("flag.outcome_reason")
    outcome_by: str | None = Field(default=None, max_length=120)
    outcome_at: datetime | None = _ts(nullable=True)
    snoozed_until: datetime | None = _ts(nullable=True)
    retired_at: datetime | None = _ts(nullable=True)


class ConsentDecision(StrEnum):
    """What the patient decided."""

    GIVEN = "given"
    DECLINED = "declined"


class ConsentRecord(SQLModel, table=True):
    """A consent decision, mirrored as a FHIR Consent in the practice record."""

    __tablename__ = "consent"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    practice_ods: str = Field(index=True, max_length=10)
    patient_id: str = Field(index=True, max_length=64)
    flag_id: str | None = Field(default=None, foreign_key="flag.id", max_length=36)
    decision: str = Field(max_length=20)
    method: str = Field(default="verbal", max_length=20)
    recorded_by: str = Field(max_length=120)
    wording_version: str = Field(max_length=40)
    reason: str | None = _sealed_text("consent.reason")
    recorded_at: datetime = _ts(nullable=False)
    withdrawn_at: datetime | None = _ts(nullable=True)
    fhir_consent_id: str | None = Field(default=None, max_length=64)
    withdrawn_by: str | None = Field(default=None, max_length=120)
    withdrawal_reason: str | None = _sealed_text("consent.withdrawal_reason")

    @property
    def is_active_permit(self) -> bool:
        """Consent given and not withdrawn."""
        return self.decision == ConsentDecision.GIVEN and self.withdrawn_at is None


class ReferralStatus(StrEnum):
    """Delivery state of a referral, from our side."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Referral(SQLModel, table=True):
    """A consented referral to one housing service; its id is stable across retries."""

    __tablename__ = "referral"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    practice_ods: str = Field(index=True, max_length=10)
    patient_id: str = Field(index=True, max_length=64)
    consent_id: str = Field(foreign_key="consent.id", max_length=36)
    flag_id: str | None = Field(default=None, foreign_key="flag.id", max_length=36)
    housing_service_id: str = Field(max_length=64)
    dataset: dict[str, Any] = _sealed_json("referral.dataset")
    nhs_number_hash: str | None = _nhs_number_hash()
    status: str = Field(default=ReferralStatus.PENDING, max_length=20, index=True)
    task_status: str | None = Field(default=None, max_length=20, description="remote Task status")
    remote_task_url: str | None = Field(default=None, max_length=500)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts(nullable=True)
    cancelled_at: datetime | None = _ts(nullable=True)
    cancel_reason: str | None = _sealed_text("referral.cancel_reason")
    # What the housing team said with its status (migration 0012): why, and what was done.
    status_reason: str | None = _sealed_text("referral.status_reason")
    outcome: str | None = _sealed_text("referral.outcome")
    # When the housing service took our request to stop and delete (after withdrawal).
    remote_cancelled_at: datetime | None = _ts(nullable=True)
    # The user account (user_account.id) that made it (migration 0013), which "Referrals
    # you made" lists by: display names are not unique. NULL for older rows and for a
    # CDS Hooks referral whose EHR user matches no single clinician account.
    referred_by_user: str | None = Field(default=None, index=True, max_length=36)


# -- register sync state (migration 0002) ------------------------------------------


class SyncState(SQLModel, table=True):
    """Where reading one stream of one practice stands: its watermark and last outcome.

    ``stream`` is a register name, ``patients`` or ``appointments``. The watermark is
    the server's own ``meta.lastUpdated`` (or bulk ``transactionTime``), never our
    clock; ``fingerprint`` says which register definition it was read with.
    """

    __tablename__ = "sync_state"
    __table_args__ = (UniqueConstraint("practice_ods", "stream"),)

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(max_length=10)  # the unique key leads with it
    stream: str = Field(max_length=40)
    source: str = Field(max_length=20)
    fingerprint: str | None = Field(default=None, max_length=64)
    watermark: datetime | None = _ts(nullable=True)
    resource_id: str | None = Field(default=None, max_length=64, description="resolved Group id")
    last_full_at: datetime | None = _ts(nullable=True)
    last_run_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    updated_at: datetime = _ts(nullable=False)


class RegisterCondition(SQLModel, table=True):
    """A Condition that plays a role (diagnosis, resolved, exclusion) for a register.

    Ids and dates only: membership is derived from these rows, and an incremental
    change to one Condition can be undone without re-reading the whole register.
    """

    __tablename__ = "register_condition"
    __table_args__ = (
        UniqueConstraint("practice_ods", "register_name", "condition_id"),
        Index("ix_register_condition_patient", "practice_ods", "register_name", "patient_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(max_length=10)
    register_name: str = Field(max_length=40)
    condition_id: str = Field(max_length=64, description="practice FHIR logical id")
    patient_id: str = Field(max_length=64, description="practice FHIR logical id")
    role: str = Field(max_length=12)
    noted: date | None = None
    updated_at: datetime = _ts(nullable=False)


class PatientStatus(SQLModel, table=True):
    """A register patient who is no longer alive and registered; nothing else about them.

    A patient with no row is current (registers/conditions.py, ``write_statuses``).
    """

    __tablename__ = "patient_status"
    __table_args__ = (UniqueConstraint("practice_ods", "patient_id"),)

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(max_length=10)  # the unique key leads with it
    patient_id: str = Field(max_length=64, description="practice FHIR logical id")
    current: bool = True
    updated_at: datetime = _ts(nullable=False)


class WatchedAppointment(SQLModel, table=True):
    """A booked appointment today or tomorrow of a register patient (ids, start, status)."""

    __tablename__ = "appointment_watch"
    __table_args__ = (
        UniqueConstraint("practice_ods", "appointment_id"),
        Index("ix_appointment_watch_start", "practice_ods", "start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    practice_ods: str = Field(max_length=10)
    appointment_id: str = Field(max_length=64, description="practice FHIR logical id")
    patient_id: str = Field(index=True, max_length=64, description="practice FHIR logical id")
    start: datetime = _ts(nullable=False)
    status: str = Field(max_length=20)
    updated_at: datetime = _ts(nullable=False)


# -- flag lifecycle events (migration 0003) ---------------------------------------------


class FlagEvent(SQLModel, table=True):
    """One move of one flag (raised, shown, an outcome, retired...): who, when, why.

    Kept for reporting; a ``shown`` event's id is the CDS Hooks card uuid, so feedback
    finds its flag and the user it was shown to.
    """

    __tablename__ = "flag_event"
    __table_args__ = (Index("ix_flag_event_practice_at", "practice_ods", "at"),)

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    flag_id: str = Field(foreign_key="flag.id", index=True, max_length=36)
    practice_ods: str = Field(max_length=10)
    kind: str = Field(max_length=20)
    reason: str | None = _sealed_text("flag_event.reason")
    actor: str | None = Field(
        default=None, max_length=120, description="a user reference, never a patient"
    )
    source: str = Field(default="api", max_length=20)
    hook: str | None = Field(default=None, max_length=40)
    at: datetime = _ts(nullable=False)


# -- housing inbox (migration 0006) -------------------------------------------------
# The housing side: a team without a case system of its own receives referrals here.
# Its officers and managers are users in access_models (migration 0009 moved them).
# Only the referral minimum dataset is kept (see healthy_homes/housing/receive.py).


class HousingTeam(SQLModel, table=True):
    """A housing team: its FHIR base is ``/teams/{id}/fhir``; one bearer token (hashed)."""

    __tablename__ = "housing_team"

    id: str = Field(primary_key=True, max_length=40, description="slug used in URLs")
    name: str = Field(max_length=120)
    token_hash: str = Field(max_length=64, description="SHA-256 of the team's bearer token")
    capacity_per_week: int | None = Field(default=None, description="None: no limit set")
    overdue_days: int = 10
    created_at: datetime = _ts(nullable=False)


class HousingReferral(SQLModel, table=True):
    """One received referral: the minimum dataset and its Task's state.

    Its id is the logical id of the Task; the ServiceRequest, Patient and Consent the
    team's FHIR base answers with are ``{id}``, ``{id}-p`` and ``{id}-c``.
    """

    __tablename__ = "housing_referral"
    __table_args__ = (
        UniqueConstraint("team_id", "referral_identifier"),
        Index("ix_housing_referral_queue", "team_id", "received_at"),
    )

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    team_id: str = Field(foreign_key="housing_team.id", max_length=40)
    referral_identifier: str = Field(max_length=64, description="the sender's referral id")
    dataset: dict[str, Any] = _sealed_json("housing_referral.dataset")
    consent: dict[str, Any] = _sealed_json("housing_referral.consent")
    nhs_number_hash: str | None = _nhs_number_hash()
    priority: str = Field(default="routine", max_length=10)
    authored_on: str | None = Field(default=None, max_length=40)
    received_at: datetime = _ts(nullable=False)
    status: str = Field(default="received", max_length=20, index=True)
    status_reason: str | None = _sealed_text("housing_referral.status_reason")
    outputs: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    started_at: datetime | None = _ts(nullable=True)
    ended_at: datetime | None = _ts(nullable=True)
    version: int = 1
    updated_at: datetime = _ts(nullable=False)


class HousingActivity(SQLModel, table=True):
    """Something an officer did or recorded on a referral (contact, visit, outcome...)."""

    __tablename__ = "housing_activity"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    referral_id: str = Field(foreign_key="housing_referral.id", index=True, max_length=36)
    kind: str = Field(max_length=20)
    text: str = _sealed_text("housing_activity.text", nullable=False)
    by: str = Field(max_length=120, description="the officer's display name")
    at: datetime = _ts(nullable=False)


# -- referral outbox and alerts (migration 0004) ------------------------------------------


class OutboxState(StrEnum):
    """Where a referral's delivery stands."""

    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    IN_FLIGHT = "in_flight"  # claimed by a worker until lease_expires_at
    DELIVERED = "delivered"
    DEAD = "dead"  # out of attempts (or refused for good): an operator decides
    CANCELLED = "cancelled"


class OutboxEntry(SQLModel, table=True):
    """One referral to deliver, written in the same transaction as the referral.

    Workers claim due entries with a lease; a worker that dies leaves its lease to
    expire and another takes the entry over. ``last_error`` is an error class and an
    operational message, never patient data.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", unique=True, max_length=36)
    housing_service_id: str = Field(max_length=64)
    state: str = Field(default=OutboxState.PENDING, max_length=20)
    attempts: int = 0
    dead_count: int = Field(default=0, description="times it went dead (one alert each)")
    next_attempt_at: datetime = _ts(nullable=False)
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    delivered_at: datetime | None = _ts(nullable=True)


class Alert(SQLModel, table=True):
    """Something an operator must look at, raised once (``key`` is unique)."""

    __tablename__ = "alert"

    id: str = Field(default_factory=_uuid, primary_key=True, max_length=36)
    key: str = Field(unique=True, max_length=120, description="kind:subject:episode")
    kind: str = Field(index=True, max_length=40)
    subject: str = Field(max_length=64, description="e.g. a referral id, never a patient")
    practice_ods: str | None = Field(default=None, max_length=10)
    message: str = Field(max_length=500)
    created_at: datetime = _ts(nullable=False)
    acknowledged_at: datetime | None = _ts(nullable=True)


# Imported last so that metadata sees the tables defined beside this module: access
# control, the audit log, operations and reporting.
from healthy_homes.store import access_models as access_models  # noqa: E402
from healthy_homes.store import audit_models as audit_models  # noqa: E402
from healthy_homes.store import ops_models as ops_models  # noqa: E402
from healthy_homes.store import reporting_models as reporting_models  # noqa: E402
