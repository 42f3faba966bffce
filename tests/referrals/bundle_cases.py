"""A table of referrals covering every optional part of the transaction (synthetic data).

``bundle_golden.json`` holds what the ``fhir.resources`` model-based builder produced for
each case (written once, from that builder, before the send path moved to plain JSON).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.store.models import ConsentDecision, ConsentRecord

BASE: dict[str, Any] = {
    "nhs_number": "9990000018",
    "given_name": "Ann",
    "family_name": "Test",
    "birth_date": "1940-01-01",
    "address_lines": ["1 High Street"],
    "city": "North Shields",
    "postcode": "NE29 6AB",
    "phone": None,
    "practice_ods": "A12345",
    "referrer": "Dr X",
}
FULL_FORM: dict[str, Any] = {
    "tenure": "private-rented",
    "concerns": ["cold-or-damp", "fall-hazards", "energy-bills"],
    "contact_method": "phone",
    "contact_times": "mornings, not Tuesdays",
    "staff_risks": "large dog | smoker ^ & ~ \\",
    "staff_risks_consented": True,
    "health_reason": "COPD register",
    "health_reason_consented": True,
}
UTC_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

#: name -> (dataset changes, consent changes, housing ODS, housing name, authored)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str | None, str, datetime]] = {
    "plain": ({}, {}, "H1234", "Housing", UTC_NOON),
    "no-ods-phone-two-given": (
        {"given_name": "Mary  Ann", "phone": "07700 900123", "city": None},
        {"method": "written"},
        None,
        "Borough Housing Team",
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    ),
    "form-and-offset": (
        {"referral_form": FULL_FORM, "address_lines": ["Flat 2", "3 Quay Road"]},
        {},
        "H5678",
        "Safe & Healthy Homes",
        datetime(2026, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))),
    ),
    "sparse": (
        {"birth_date": "1940", "address_lines": [], "postcode": None, "city": None},
        {"recorded_at": datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)},
        "H1234",
        "Housing",
        UTC_NOON,
    ),
    "delimiters-and-unicode": (
        {
            "given_name": "Zoë Ann-Marie",
            "family_name": "O'Brien|Smith^&~\\",
            "address_lines": ["1 Rue d'Été", "Line\twith tab"],
            "referrer": "Dr Ó Súilleabháin",
            "reason": "Home check: damp\nand cold",
            "referral_form": {"tenure": "social", "concerns": ["repairs"]},
        },
        {"decision": ConsentDecision.DECLINED},
        "H1234",
        "Housing",
        UTC_NOON,
    ),
    "withdrawn": (
        {"birth_date": "1950-07"},
        {"withdrawn_at": UTC_NOON},
        "H1234",
        "Housing",
        datetime(2026, 11, 24, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ),
}


def dataset(changes: dict[str, Any]) -> MinimumDataset:
    """The base dataset with ``changes``."""
    return MinimumDataset.model_validate({**BASE, **changes})


def consent(changes: dict[str, Any]) -> ConsentRecord:
    """A consent record (fixed id) with ``changes``."""
    values: dict[str, Any] = {
        "id": "c0ffee00-0000-4000-8000-000000000001",
        "practice_ods": "A12345",
        "patient_id": "p1",
        "decision": ConsentDecision.GIVEN,
        "recorded_by": "Dr X",
        "wording_version": "2026-1",
        "recorded_at": datetime(2026, 11, 24, 11, 58, tzinfo=UTC),
    }
    values.update(changes)
    return ConsentRecord(**values)


def bundle_kwargs(name: str) -> dict[str, Any]:
    """``referral_bundle`` keyword arguments for case ``name``."""
    data, consent_changes, ods, housing, authored = CASES[name]
    return {
        "referral_id": f"0000000{len(name) % 10}-aaaa-4bbb-8ccc-{name.encode().hex()[:12]:0>12}",
        "dataset": dataset(data),
        "consent": consent(consent_changes),
        "housing_ods": ods,
        "housing_name": housing,
        "authored": authored,
    }
