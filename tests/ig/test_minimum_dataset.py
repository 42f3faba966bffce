"""Only the referral minimum dataset leaves the practice, on every transport.

The dataset is defined once (``referrals/dataset.py``) and documented in
``docs/ig-clinical-safety.md``. These tests pin both: a new field in the dataset fails
``test_the_dataset_is_the_documented_one``; a patient record stuffed with other
identifiable data and with health data (a diagnosis, register membership) must leave
none of it in any payload that goes on the wire, FHIR, BaRS, HL7 v2 or email.
"""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

import orjson
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import (
    BarsHousingService,
    EmailHousingService,
    Hl7v2HousingService,
    HousingServiceConfig,
    PracticeConfig,
)
from healthy_homes.fhir.systems import NHS_NUMBER
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.dataset import (
    MinimumDataset,
    ReferralForm,
    allow_health_reason,
    from_patient,
)
from healthy_homes.referrals.transports.bars import build_message
from healthy_homes.referrals.transports.base import ReferralEnvelope
from healthy_homes.referrals.transports.email import build_email
from healthy_homes.referrals.transports.hl7v2 import build_ref_i12
from healthy_homes.store.models import ConsentDecision, ConsentRecord

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DOC = Path(__file__).resolve().parents[2] / "docs" / "ig-clinical-safety.md"

#: The only fields that may leave: change this list, the dataset and the document together.
PINNED = [
    "nhs_number",
    "given_name",
    "family_name",
    "birth_date",
    "address_lines",
    "city",
    "postcode",
    "phone",
    "practice_ods",
    "referrer",
    "reason",
    "referral_form",
]

#: Synthetic patient with far more in the record than housing may see.
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"system": NHS_NUMBER, "value": "9990000018"},
        {"system": "https://trust.example/mrn", "value": "MRNDECOY4471"},
    ],
    "name": [
        {"use": "official", "family": "Testperson", "given": ["Ann"]},
        {"use": "maiden", "family": "Maidendecoy", "given": ["Annie"]},
    ],
    "telecom": [
        {"system": "phone", "value": "0191 496 0000"},
        {"system": "email", "value": "decoy.person@example.test"},
        {"system": "phone", "use": "work", "value": "0191 496 0999"},
    ],
    "gender": "female",
    "birthDate": "1940-01-01",
    "maritalStatus": {"text": "Widowedecoy"},
    "address": [
        {
            "use": "home",
            "line": ["1 High Street"],
            "city": "North Shields",
            "postalCode": "NE29 6AB",
        },
        {"use": "old", "line": ["99 Decoy Lane"], "city": "Oldtown", "postalCode": "NE1 1DE"},
    ],
    "contact": [{"name": {"family": "Nextofkindecoy"}}],
    "generalPractitioner": [{"display": "Dr Gpdecoy"}],
    "extension": [{"url": "https://example.test/ethnicity", "valueString": "Ethnicdecoy"}],
}
#: Must never appear on the wire (besides the above decoys): health data from the record.
HEALTH = ["13645005", "Chronic obstructive", "COPD", "asthma", "195967001", "register"]
DECOYS = [
    "MRNDECOY4471",
    "Maidendecoy",
    "decoy.person@example.test",
    "0191 496 0999",
    "Widowedecoy",
    "99 Decoy Lane",
    "Oldtown",
    "NE1 1DE",
    "Nextofkindecoy",
    "Gpdecoy",
    "Ethnicdecoy",
    "female",
]
EXPECTED = ["9990000018", "Ann", "Testperson", "1 High Street", "North Shields", "NE29 6AB"]

BARS = BarsHousingService(
    id="bars",
    name="Borough Housing",
    ods_code="H5678",
    transport="bars",
    fhir_base_url="http://housing.test/fhir",
    reply_endpoint="https://healthy-homes.test/bars/replies",
)
HL7 = Hl7v2HousingService(
    id="v2", name="Coast Housing", transport="hl7v2", mllp_host="127.0.0.1", mllp_port=2575
)
MAIL = EmailHousingService(
    id="mail",
    name="District Housing",
    transport="email",
    smtp_host="127.0.0.1",
    sender="referrals@healthy-homes.test",
    recipient="housing-team@district.test",
)


def _consent() -> ConsentRecord:
    return ConsentRecord(
        id="c0ffee00-0000-4000-8000-000000000001",
        practice_ods="A12345",
        patient_id="p1",
        decision=ConsentDecision.GIVEN,
        recorded_by="Dr X",
        wording_version="2026-1",
        recorded_at=NOW,
    )


def _envelope(service: HousingServiceConfig, form: ReferralForm | None) -> ReferralEnvelope:
    data = from_patient(PATIENT, practice_ods="A12345", referrer="Dr X", form=form)
    return ReferralEnvelope(
        referral_id="5e1f0000-0000-4000-8000-000000000001",
        practice_ods="A12345",
        dataset=data,
        consent=_consent(),
        service=service,
        authored=NOW,
        correlation_id="corr-1",
    )


def _wire(kind: str, form: ReferralForm | None) -> str:
    """Everything the transport of ``kind`` would put on the wire, as text."""
    if kind == "fhir":
        env = _envelope(BARS, form)
        bundle = referral_bundle(
            referral_id=env.referral_id,
            dataset=env.dataset,
            consent=env.consent,
            housing_ods="H5678",
            housing_name="Borough Housing",
            authored=NOW,
        )
        return orjson.dumps(bundle).decode()
    if kind == "bars":
        return orjson.dumps(build_message(_envelope(BARS, form), BARS)).decode()
    if kind == "hl7v2":
        return build_ref_i12(_envelope(HL7, form), HL7, NOW).replace("\\T\\", "&")
    message = build_email(_envelope(MAIL, form), MAIL, FixedClock(NOW), cancel=False)
    parsed = message_from_bytes(message.as_bytes(), policy=email.policy.default)
    parts = [
        part.get_content()
        if part.get_content_maintype() == "text"
        else part.get_payload(decode=True)
        for part in parsed.walk()
        if not part.is_multipart()
    ]
    headers = "\n".join(f"{k}: {v}" for k, v in parsed.items())
    return headers + "\n" + "\n".join(p if isinstance(p, str) else p.decode() for p in parts)


TRANSPORTS = ["fhir", "bars", "hl7v2", "email"]


def test_the_dataset_is_the_documented_one() -> None:
    assert list(MinimumDataset.model_fields) == PINNED
    documented = DOC.read_text(encoding="utf-8")
    section = documented[documented.index("## What leaves the practice") :]
    section = section[: section.index("\n## ", 4)]
    listed = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert listed == PINNED


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_nothing_but_the_dataset_leaves_on_any_transport(kind: str) -> None:
    wire = _wire(kind, ReferralForm())
    for value in EXPECTED:
        assert value in wire, f"{kind}: the dataset's {value!r} is missing"
    for value in DECOYS + HEALTH:
        assert value.lower() not in wire.lower(), f"{kind}: {value!r} left the practice"


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_health_reason_leaves_only_with_the_patients_agreement(kind: str) -> None:
    reason = "On the COPD register since 2019"
    agreed = ReferralForm(health_reason=reason, health_reason_consented=True)
    assert reason in _wire(kind, agreed)
    with pytest.raises(ValueError, match="only with the patient's consent"):
        ReferralForm(health_reason=reason)


def test_a_health_reason_needs_the_practice_to_turn_it_on() -> None:
    practice = PracticeConfig(ods_code="A12345", name="P", fhir_base_url="http://gp.test/fhir")
    assert practice.share_health_reason is False
    agreed = ReferralForm(health_reason="On the COPD register", health_reason_consented=True)
    with pytest.raises(ValueError, match="share_health_reason"):
        allow_health_reason(agreed, practice_allows=practice.share_health_reason)
    allow_health_reason(agreed, practice_allows=True)
    allow_health_reason(ReferralForm(), practice_allows=False)
