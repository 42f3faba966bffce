"""Configuration schema, validated at start-up.

The file format is TOML (https://toml.io/en/v1.0.0); every key can be overridden
from the environment as ``HEALTHY_HOMES__SECTION__KEY`` (see docs/configuration.md).
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from healthy_homes.config.access import AccessConfig as AccessConfig
from healthy_homes.config.cds_hooks import CdsHooksConfig as CdsHooksConfig
from healthy_homes.config.flag_rules import FlagRulesConfig as FlagRulesConfig
from healthy_homes.config.ops import OpsConfig as OpsConfig
from healthy_homes.config.reporting import ReportingConfig as ReportingConfig
from healthy_homes.config.retention import RetentionConfig as RetentionConfig
from healthy_homes.config.security import SecurityConfig as SecurityConfig

ODS_CODE = re.compile(r"^[A-Z0-9]{3,10}$")
REGISTER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_REGISTERS = ("copd", "asthma", "falls", "high_risk")
ClinicalStatus = Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]
ACTIVE_STATUSES: tuple[ClinicalStatus, ...] = ("active", "recurrence", "relapse")
RegisterSource = Literal["condition", "group", "bulk"]
GROUP_SPEC = re.compile(r"^(Group/[A-Za-z0-9\-.]{1,64}|identifier=.+|name=.+)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Strict):
    """Where the connector keeps its state."""

    url: str = Field(
        default="sqlite:///healthy-homes.db",
        description="SQLAlchemy URL: sqlite:///path/to/file.db or postgresql+psycopg://...",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value


class AuthConfig(_Strict):
    """How the connector authenticates to a FHIR endpoint."""

    kind: Literal["none", "bearer", "smart", "mtls"] = "none"
    token: SecretStr | None = Field(default=None, description="static bearer token (kind=bearer)")
    client_id: str | None = Field(default=None, description="SMART client id (kind=smart)")
    token_url: AnyHttpUrl | None = Field(default=None, description="SMART token endpoint")
    private_key_file: str | None = Field(default=None, description="PEM private key (smart)")
    key_id: str | None = Field(default=None, description="kid of the registered public key")
    scope: str = "system/Patient.rs system/Condition.rs system/Appointment.rs system/Flag.cruds"
    client_cert_file: str | None = Field(default=None, description="client certificate (mtls)")
    client_key_file: str | None = Field(default=None, description="client key (mtls)")
    ca_file: str | None = Field(
        default=None, description="PEM bundle of CAs trusted for the server (mtls; else certifi)"
    )

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        needed: dict[str, tuple[str, ...]] = {
            "bearer": ("token",),
            "smart": ("client_id", "token_url", "private_key_file"),
            "mtls": ("client_cert_file", "client_key_file"),
        }
        missing = [k for k in needed.get(self.kind, ()) if getattr(self, k) is None]
        if missing:
            raise ValueError(f"auth kind '{self.kind}' also needs: {', '.join(missing)}")
        return self


class RegisterConfig(_Strict):
    """A register the practice reads: its code set and the rules around it."""

    name: str
    codeset: str = Field(description="built-in code set name, or a path to a code set JSON file")
    title: str | None = None
    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)
    enabled: bool = True
    clinical_statuses: list[ClinicalStatus] = Field(
        default_factory=lambda: list(ACTIVE_STATUSES),
        min_length=1,
        description="Condition.clinicalStatus values that count (a missing status counts too)",
    )
    resolved_codes: bool = Field(
        default=True,
        description="honour the code set's 'resolved' codes: a resolved code recorded on or "
        "after the latest diagnosis takes the patient off the register",
    )
    exclusion_codeset: str | None = Field(
        default=None,
        description="built-in name or path of a code set whose unresolved codes exclude a patient",
    )

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not REGISTER_NAME.match(value):
            raise ValueError("must be lower-case letters, digits and underscores, e.g. 'copd'")
        return value

    @model_validator(mode="after")
    def _age_band(self) -> RegisterConfig:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age must not be above max_age")
        return self


class PracticeConfig(_Strict):
    """One GP practice whose registers the connector reads."""

    ods_code: str = Field(description="the practice's ODS code, e.g. A12345")
    name: str
    fhir_base_url: AnyHttpUrl
    registers: list[str] = Field(default_factory=lambda: list(DEFAULT_REGISTERS))
    own_registers: list[RegisterConfig] = Field(
        default_factory=list, description="registers only this practice reads (always on)"
    )
    auth: AuthConfig = Field(default_factory=AuthConfig)
    housing_service: str | None = Field(
        default=None, description="id of the housing service this practice refers to"
    )
    register_source: RegisterSource = Field(
        default="condition",
        description="how registers are read: Condition search by code, FHIR Group membership, "
        "or Bulk Data Group/$export",
    )
    groups: dict[str, str] = Field(
        default_factory=dict,
        description="register name -> 'Group/ID', 'identifier=SYSTEM|VALUE' or 'name=TEXT' "
        "(group and bulk sources; default identifier=<register name>)",
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="longest one run of this practice may take"
    )
    share_health_reason: bool = Field(
        default=False,
        description="offer to share why the patient was flagged (their register) with "
        "housing; it leaves only if the patient also agrees",
    )

    @field_validator("ods_code")
    @classmethod
    def _ods_shape(cls, value: str) -> str:
        if not ODS_CODE.match(value):
            raise ValueError("must be an ODS code: 3 to 10 upper-case letters or digits")
        return value

    @field_validator("groups")
    @classmethod
    def _group_specs(cls, value: dict[str, str]) -> dict[str, str]:
        for name, spec in value.items():
            if not GROUP_SPEC.match(spec):
                raise ValueError(
                    f"groups.{name}: expected 'Group/ID', 'identifier=SYSTEM|VALUE' or 'name=TEXT'"
                )
        return value

    @model_validator(mode="after")
    def _own_registers_unique(self) -> PracticeConfig:
        names = [r.name for r in self.own_registers]
        if len(set(names)) != len(names):
            raise ValueError("own_registers: each name may appear only once")
        return self


HousingTransport = Literal["fhir", "bars", "hl7v2", "email"]
TenureCode = Literal["owner-occupier", "private-rented", "social"]
#: An outward code ("NE25") or a postcode district with its sector digit ("NE25 9").
POSTCODE_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?( [0-9])?$")


class HousingServiceConfig(_Strict):
    """A housing service that receives referrals: who it is, whom it takes, how it is reached.

    Transport-specific settings live in the subclasses below, picked by ``transport``
    (see :data:`HousingService`). This base keeps ``fhir_base_url`` and ``auth`` so
    code written for the FHIR transport keeps working.
    """

    id: str
    name: str
    ods_code: str | None = None
    transport: HousingTransport = "fhir"
    fhir_base_url: AnyHttpUrl | None = None
    auth: AuthConfig = Field(default_factory=AuthConfig)
    remit: str = Field(
        default="Home health and safety: cold, damp, hazards and repairs",
        max_length=200,
        description="what the service does, in words a clinician reads before consent",
    )
    tenures: list[TenureCode] = Field(
        default_factory=list,
        description="tenures the service accepts (empty: every tenure)",
    )
    postcode_districts: list[str] = Field(
        default_factory=list,
        description="postcode districts covered, e.g. 'NE25' or 'NE25 9' (empty: anywhere)",
    )
    routing_priority: int = Field(
        default=100,
        ge=0,
        description="when several services fit, the lowest priority wins (then the most "
        "specific postcode match, then the id)",
    )
    ack_working_days: int = Field(
        default=5, ge=1, le=60, description="working days to acknowledge before an alert"
    )
    bank_holidays: list[date] = Field(
        default_factory=list, description="days that are not working days for this service"
    )
    receipt_is_acknowledgement: bool = Field(
        default=False,
        description="count the receiving system's receipt (HL7 v2 AA, a BaRS 'received' "
        "response) as the acknowledgement; otherwise a person must accept, reject or start it",
    )
    capacity_url: AnyHttpUrl | None = Field(
        default=None,
        description="the housing inbox's capacity endpoint for this team "
        "(https://inbox.example/teams/TEAM/capacity), read with this service's auth; new "
        "flags are throttled by the free places it reports",
    )

    @field_validator("postcode_districts")
    @classmethod
    def _districts(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(d.upper().split()) for d in value]
        for district in cleaned:
            if not POSTCODE_DISTRICT.match(district):
                raise ValueError(f"'{district}' is not a postcode district such as NE25 or NE25 9")
        return cleaned

    @model_validator(mode="after")
    def _base_url_when_fhir(self) -> HousingServiceConfig:
        if self.transport in ("fhir", "bars") and self.fhir_base_url is None:
            raise ValueError(f"transport '{self.transport}' needs fhir_base_url")
        return self


class FhirHousingService(HousingServiceConfig):
    """FHIR REST transaction (SDOH Clinical Care pattern)."""

    transport: Literal["fhir"] = "fhir"
    fhir_base_url: AnyHttpUrl
    poll_minutes: float = Field(default=15, gt=0, description="minutes between Task polls")
    referrals_per_request: int = Field(
        default=1,
        ge=1,
        le=50,
        description="referrals combined in one transaction (each keeps its own conditional "
        "creates); more than 1 only for receivers that take several, such as HAPI FHIR; "
        "one refused whole is sent again a referral at a time",
    )


class BarsHousingService(HousingServiceConfig):
    """NHS Booking and Referral Standard message to ``$process-message``."""

    transport: Literal["bars"]
    fhir_base_url: AnyHttpUrl
    reply_endpoint: AnyHttpUrl = Field(
        description="our endpoint for servicerequest-response messages (MessageHeader.source)"
    )
    source_name: str = "Healthy Homes"
    responses_path: str = Field(
        default="bars/responses",
        description="path under the base URL where servicerequest-response messages are polled",
    )


class Hl7v2HousingService(HousingServiceConfig):
    """HL7 v2 REF^I12 over MLLP."""

    transport: Literal["hl7v2"]
    mllp_host: str
    mllp_port: int = Field(ge=1, le=65535)
    sending_application: str = "HEALTHY_HOMES"
    receiving_application: str = "HOUSING"
    receiving_facility: str | None = None
    timeout_seconds: float = Field(default=10, gt=0, description="wait this long for the ACK")
    tls: bool = Field(default=False, description="MLLP inside TLS (needs ca_file unless public)")
    ca_file: str | None = None


class EmailHousingService(HousingServiceConfig):
    """Secure email: SMTP with STARTTLS and a structured attachment."""

    transport: Literal["email"]
    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(description="From address")
    recipient: str = Field(description="the housing team's secure mailbox")
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = Field(default=None, description="PEM CAs for the SMTP server")
    timeout_seconds: float = Field(default=30, gt=0)


def _transport_of(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("transport", "fhir"))
    return str(getattr(value, "transport", "fhir"))


#: A ``[[housing_services]]`` entry, keyed by ``transport`` (absent means "fhir").
HousingService = Annotated[
    Annotated[FhirHousingService, Tag("fhir")]
    | Annotated[BarsHousingService, Tag("bars")]
    | Annotated[Hl7v2HousingService, Tag("hl7v2")]
    | Annotated[EmailHousingService, Tag("email")],
    Discriminator(_transport_of),
]


class SyncConfig(_Strict):
    """When and how hard the connector reads practices' registers."""

    incremental_minutes: float = Field(
        default=5, gt=0, description="minutes between incremental syncs of each practice"
    )
    appointment_seconds: float = Field(
        default=60, gt=0, description="seconds between appointment watches of each practice"
    )
    reconcile_at: time = Field(
        default=time(2, 30), description="local time of the nightly full reconciliation"
    )
    timezone: str = Field(
        default="Europe/London", description="time zone of reconcile_at and of 'today'"
    )
    overlap_seconds: float = Field(
        default=300,
        ge=0,
        description="incremental reads start this long before the watermark, so clock skew "
        "and late commits on the server lose nothing",
    )
    max_concurrent_practices: int = Field(
        default=4, ge=1, le=256, description="practices synced at the same time"
    )
    practice_timeout_seconds: float = Field(
        default=900, gt=0, description="longest one practice run may take (per practice)"
    )
    page_size: int = Field(default=200, ge=10, le=1000, description="_count of each search")
    parallel_reads: int = Field(
        default=4, ge=1, le=8, description="registers of one practice read at the same time"
    )
    bulk_max_wait_seconds: float = Field(
        default=1800, gt=0, description="give up on a bulk export not ready after this long"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name, e.g. Europe/London") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


class DeliveryConfig(_Strict):
    """The referral delivery worker: outbox claims, leases, retries and dead letters."""

    batch_size: int = Field(default=50, ge=1, le=1000, description="entries claimed at once")
    concurrency: int = Field(
        default=16, ge=1, le=256, description="deliveries in flight at once per worker"
    )
    lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="how long a claim holds; a dead worker's entries return after this",
    )
    send_timeout_seconds: float = Field(
        default=60.0, gt=0, description="one delivery attempt; must be shorter than the lease"
    )
    poll_seconds: float = Field(
        default=1.0, gt=0, description="how often an idle worker looks for due entries"
    )
    max_attempts: int = Field(
        default=10, ge=1, le=100, description="attempts before an entry goes dead (one alert)"
    )
    backoff_base_seconds: float = Field(
        default=5.0, gt=0, description="ceiling of the first retry's wait (full jitter)"
    )
    backoff_cap_seconds: float = Field(
        default=3600.0, gt=0, description="largest retry wait ceiling"
    )
    interval_seconds: float = Field(
        default=5.0, gt=0, description="how often the connector's scheduler runs delivery"
    )

    @model_validator(mode="after")
    def _timeout_within_lease(self) -> DeliveryConfig:
        if self.send_timeout_seconds >= self.lease_seconds:
            raise ValueError("send_timeout_seconds must be shorter than lease_seconds")
        return self


class Settings(_Strict):
    """The whole configuration of one deployment."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    registers: list[RegisterConfig] = Field(default_factory=list)
    practices: list[PracticeConfig] = Field(default_factory=list)
    housing_services: list[HousingService] = Field(default_factory=list)
    flags: FlagRulesConfig = Field(default_factory=FlagRulesConfig)
    reporting: ReportingConfig = Field(default_factory=ReportingConfig)
    cds_hooks: CdsHooksConfig = Field(default_factory=CdsHooksConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)

    @field_validator("housing_services", mode="before")
    @classmethod
    def _plain_services(cls, value: object) -> object:
        # A bare HousingServiceConfig (code written before the transports) becomes its
        # transport's own model, so older call sites keep working.
        if not isinstance(value, list):
            return value
        return [
            item.model_dump(exclude_unset=True) | {"transport": item.transport}
            if type(item) is HousingServiceConfig
            else item
            for item in value
        ]

    @model_validator(mode="after")
    def _references_resolve(self) -> Settings:
        known_registers = set(DEFAULT_REGISTERS) | {r.name for r in self.registers}
        services = {s.id for s in self.housing_services}
        for i, practice in enumerate(self.practices):
            own = {r.name for r in practice.own_registers}
            for name in practice.registers:
                if name not in known_registers | own:
                    raise ValueError(
                        f"practices[{i}].registers: unknown register '{name}'; expected one of "
                        f"{', '.join(sorted(known_registers))} or a [[registers]] entry"
                    )
            for name in practice.groups:
                if name not in known_registers | own:
                    raise ValueError(
                        f"practices[{i}].groups: unknown register '{name}'; expected a register "
                        "this practice reads"
                    )
            if practice.housing_service and practice.housing_service not in services:
                raise ValueError(
                    f"practices[{i}].housing_service: unknown housing service "
                    f"'{practice.housing_service}'; expected one of the [[housing_services]] ids"
                )
        ids = [s.id for s in self.housing_services]
        if len(set(ids)) != len(ids):
            raise ValueError("housing_services: each id may appear only once")
        odss = [p.ods_code for p in self.practices]
        if len(set(odss)) != len(odss):
            raise ValueError("practices: each ods_code may appear only once")
        return self

    def practice(self, ods_code: str) -> PracticeConfig:
        """The practice with this ODS code."""
        for practice in self.practices:
            if practice.ods_code == ods_code:
                return practice
        raise KeyError(ods_code)

    def housing_service_for(self, practice: PracticeConfig) -> HousingServiceConfig | None:
        """The housing service a practice refers to (the first one when not named)."""
        wanted = practice.housing_service
        for service in self.housing_services:
            if wanted is None or service.id == wanted:
                return service
        return None
