"""Referral envelopes for transport tests: synthetic patients only (999 range)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from healthy_homes.config.models import Hl7v2HousingService, HousingServiceConfig
from healthy_homes.referrals.dataset import MinimumDataset, ReferralForm, Tenure
from healthy_homes.referrals.transports.base import ReferralEnvelope
from healthy_homes.store.models import ConsentDecision, ConsentRecord

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def dataset(**changes: Any) -> MinimumDataset:
    """A minimum dataset; ``changes`` override fields."""
    base: dict[str, Any] = {
        "nhs_number": "9990000018",
        "given_name": "Ann",
        "family_name": "Test",
        "birth_date": "1940-01-01",
        "address_lines": ["1 High Street"],
        "city": "North Shields",
        "postcode": "NE29 6AB",
        "phone": "0191 000 0000",
        "practice_ods": "A12345",
        "referrer": "Dr X",
        "referral_form": ReferralForm(tenure=Tenure.PRIVATE_RENTED),
    }
    base.update(changes)
    return MinimumDataset.model_validate(base)


def consent() -> ConsentRecord:
    """An active consent."""
    return ConsentRecord(
        id="c0ffee00-0000-4000-8000-000000000001",
        practice_ods="A12345",
        patient_id="p1",
        decision=ConsentDecision.GIVEN,
        recorded_by="Dr X",
        wording_version="2026-1",
        recorded_at=NOW,
    )


def envelope(
    service: HousingServiceConfig,
    *,
    referral_id: str = "5e1f0000-0000-4000-8000-000000000001",
    data: MinimumDataset | None = None,
) -> ReferralEnvelope:
    """An envelope for ``service``."""
    return ReferralEnvelope(
        referral_id=referral_id,
        practice_ods="A12345",
        dataset=data or dataset(),
        consent=consent(),
        service=service,
        authored=NOW,
        correlation_id="corr-" + referral_id[:8],
    )


def hl7v2_service(port: int = 2575) -> Hl7v2HousingService:
    """An HL7 v2 housing service whose MLLP receiver listens on loopback ``port``."""
    return Hl7v2HousingService(
        id="v2",
        name="Coast & Country Housing",
        ods_code="H1234",
        transport="hl7v2",
        mllp_host="127.0.0.1",
        mllp_port=port,
        timeout_seconds=5,
    )
