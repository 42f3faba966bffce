"""The ``[cds_hooks]`` section: the CDS Hooks service and the EHRs allowed to call it.

CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients): each calling EHR
signs a JWT; we trust an allowlist of issuers, each with its JWK Set (a URL fetched
with httpx and cached, or the set inline) and the one practice it speaks for.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

_ODS = re.compile(r"^[A-Z0-9]{3,10}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CdsIssuerConfig(_Strict):
    """One EHR (JWT issuer) allowed to call the service, and the practice it speaks for."""

    iss: str = Field(min_length=1, description="the JWT 'iss' exactly as the EHR sends it")
    jwks_url: AnyHttpUrl | None = Field(default=None, description="where its JWK Set is published")
    jwks: dict[str, Any] | None = Field(default=None, description="its JWK Set, inline")
    practice_ods: str = Field(description="ODS code of the practice whose flags it may see")
    tenant: str | None = Field(default=None, description="if set, the JWT 'tenant' must equal it")
    fhir_servers: list[str] = Field(
        default_factory=list,
        description="fhirServer base URLs we may read from when prefetch is missing "
        "(empty: never fetch, answer 412)",
    )

    @field_validator("practice_ods")
    @classmethod
    def _ods(cls, value: str) -> str:
        if not _ODS.match(value):
            raise ValueError("must be an ODS code: 3 to 10 upper-case letters or digits")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> CdsIssuerConfig:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give exactly one of jwks_url or jwks")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError("jwks must be a JWK Set: an object with a 'keys' array")
        return self


class CdsHooksConfig(_Strict):
    """The CDS Hooks service: where it is published and whom it trusts."""

    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8090"),
        description="the URL EHRs call; a JWT's 'aud' must be this plus /cds-services/{id}",
    )
    host: str = Field(default="127.0.0.1", description="address 'cds-hooks serve' listens on")
    port: int = Field(default=8090, ge=0, le=65535)
    referral_page_url: str = Field(
        default="http://127.0.0.1:8090/referral/{flag_id}",
        description="absolute URL of the referral page; {flag_id} is replaced",
    )
    source_label: str = Field(default="Healthy Homes", max_length=80)
    source_url: AnyHttpUrl | None = Field(
        default=None, description="page about the service, shown as the card's source link"
    )
    issuers: list[CdsIssuerConfig] = Field(default_factory=list)
    jwks_cache_seconds: float = Field(default=300, gt=0, description="how long a JWK Set is kept")
    clock_skew_seconds: float = Field(default=60, ge=0, le=600)
    max_token_lifetime_seconds: float = Field(
        default=300, gt=0, description="tokens whose exp lies further ahead are refused"
    )
    fetch_timeout_seconds: float = Field(
        default=2.0, gt=0, description="limit on a fallback fetch from the EHR's fhirServer"
    )
    send_on_consent: bool = Field(
        default=True,
        description="accepting 'Refer: patient consents' sends the referral at once",
    )

    @field_validator("referral_page_url")
    @classmethod
    def _page_template(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or "{flag_id}" not in value:
            raise ValueError("must be an absolute http(s) URL containing {flag_id}")
        return value

    @model_validator(mode="after")
    def _issuers_unique(self) -> CdsHooksConfig:
        names = [i.iss for i in self.issuers]
        if len(set(names)) != len(names):
            raise ValueError("issuers: each iss may appear only once")
        return self

    def service_url(self, service_id: str) -> str:
        """The exact URL of one service: what a caller's JWT must name as audience."""
        return f"{str(self.public_base_url).rstrip('/')}/cds-services/{service_id}"

    def issuer(self, iss: str) -> CdsIssuerConfig | None:
        """The allowlist entry for an issuer, if any."""
        return next((i for i in self.issuers if i.iss == iss), None)
