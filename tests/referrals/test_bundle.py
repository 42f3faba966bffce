"""The referral transaction is built as plain JSON: it must be the FHIR the models made.

Two proofs: for a table of referrals it equals, element for element, what the
``fhir.resources`` model-based builder produced (``bundle_golden.json``); and for
generated referrals it validates as an R4B Bundle and survives the model's round
trip unchanged (so nothing the models would have rewritten or refused is sent).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st

from healthy_homes.errors import ReferralError
from healthy_homes.fhir.resources import fhir_datetime, to_json
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.dataset import Concern, ContactMethod, Tenure
from tests.referrals.bundle_cases import BASE, CASES, bundle_kwargs, consent, dataset

GOLDEN = json.loads((Path(__file__).parent / "bundle_golden.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_equals_the_model_built_bundle(name: str) -> None:
    assert referral_bundle(**bundle_kwargs(name)) == GOLDEN[name]


def test_the_table_covers_every_optional_part() -> None:
    # A golden table that never exercised an element would prove nothing about it.
    text = json.dumps(GOLDEN)
    for part in ('"note"', '"telecom"', '"birthDate": "1940"', '-05:30"', ".123456Z"):
        assert part in text
    assert any("city" not in str(b["entry"][0]["resource"]["address"]) for b in GOLDEN.values())
    assert any("line" not in b["entry"][0]["resource"]["address"][0] for b in GOLDEN.values())


# FHIR strings: any text but one made only of white space other than space, tab, CR, LF
# (which the models refuse and a practice's FHIR record cannot hold).
_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Zs"), whitelist_characters=" \t\n'|^~\\&"
    ),
    max_size=30,
)
_optional = st.none() | _text
_form = st.none() | st.fixed_dictionaries(
    {
        "tenure": st.none() | st.sampled_from(list(Tenure)),
        "concerns": st.lists(st.sampled_from(list(Concern)), max_size=5),
        "contact_method": st.none() | st.sampled_from(list(ContactMethod)),
        "contact_times": _optional,
        "staff_risks": _optional,
        "staff_risks_consented": st.just(True),
        "health_reason": _optional,
        "health_reason_consented": st.just(True),
    }
)
_dates = st.sampled_from(["1940", "1940-02", "1940-02-29", None, ""])
_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-9, minutes=-30))]
)
_moments = st.builds(
    lambda d, z: d.replace(tzinfo=z),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    _zones,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    changes=st.fixed_dictionaries(
        {
            "given_name": _text,
            "family_name": _text,
            "birth_date": _dates,
            "address_lines": st.lists(_text, max_size=3),
            "city": _optional,
            "postcode": _optional,
            "phone": _optional,
            "referrer": _text,
            "reason": _text,
            "referral_form": _form,
        }
    ),
    ods=st.none() | st.sampled_from(["H1234", ""]),
    housing=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s != ""),
    authored=_moments,
    recorded=_moments,
    declined=st.booleans(),
)
def test_validates_and_survives_the_model_round_trip(
    changes: dict[str, Any],
    ods: str | None,
    housing: str,
    authored: datetime,
    recorded: datetime,
    declined: bool,
) -> None:
    kwargs = bundle_kwargs("plain")
    kwargs |= {
        "dataset": dataset(changes),
        "consent": consent(
            {"recorded_at": recorded} | ({"decision": "declined"} if declined else {})
        ),
        "housing_ods": ods,
        "housing_name": housing,
        "authored": authored,
    }
    bundle = referral_bundle(**kwargs)
    assert to_json(Bundle.model_validate(bundle)) == bundle


def test_a_birth_date_that_is_not_a_fhir_date_is_refused_without_its_value() -> None:
    kwargs = bundle_kwargs("plain") | {"dataset": dataset({"birth_date": "01/02/1940"})}
    with pytest.raises(ReferralError) as raised:
        referral_bundle(**kwargs)
    assert "01/02/1940" not in str(raised.value)
    assert BASE["nhs_number"] not in str(raised.value)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        fhir_datetime(datetime(2026, 1, 1, 12, 0))
    assert fhir_datetime(datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == "2026-01-01T12:00:00Z"
