"""Routing: several housing services, each referral to exactly one, refusals before consent."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from healthy_homes.config.models import HousingServiceConfig, Settings
from healthy_homes.errors import RoutingError
from healthy_homes.referrals.dataset import MinimumDataset, ReferralForm, Tenure
from healthy_homes.referrals.routing import postcode_parts, route, route_dataset

SERVICES: list[dict[str, Any]] = [
    {  # North Tyneside private-sector team: private homes only
        "id": "north-tyneside",
        "name": "North Tyneside Safe and Healthy Homes",
        "fhir_base_url": "https://nt.example/fhir",
        "tenures": ["owner-occupier", "private-rented"],
        "postcode_districts": ["NE25", "NE26", "NE29", "NE30"],
    },
    {  # a housing association covering one sector for its own tenants
        "id": "coast-ha",
        "name": "Coast Housing Association",
        "transport": "bars",
        "fhir_base_url": "https://coast.example/fhir",
        "reply_endpoint": "https://hh.example/bars",
        "tenures": ["social"],
        "postcode_districts": ["NE25", "NE29 6"],
    },
    {  # a district council by email; any tenure
        "id": "rural-district",
        "name": "Rural District Council Housing",
        "transport": "email",
        "smtp_host": "smtp.rural.example",
        "sender": "hh@example.org",
        "recipient": "housing@rural.example",
        "postcode_districts": ["NE46", "NE47"],
    },
    {  # a v2 system overlapping Rural District in NE46 9 for private renters, lower priority
        "id": "hexham-v2",
        "name": "Hexham Private Rented Team",
        "transport": "hl7v2",
        "mllp_host": "10.0.0.5",
        "mllp_port": 2575,
        "tenures": ["private-rented"],
        "postcode_districts": ["NE46 9"],
        "routing_priority": 200,
    },
]


def _services() -> list[HousingServiceConfig]:
    return list(Settings.model_validate({"housing_services": SERVICES}).housing_services)


@pytest.mark.parametrize(
    ("postcode", "tenure", "expected"),
    [
        ("NE25 8AA", Tenure.OWNER_OCCUPIER, "north-tyneside"),
        ("ne258aa", "private-rented", "north-tyneside"),
        ("NE25 8AA", Tenure.SOCIAL, "coast-ha"),
        ("NE29 6AB", Tenure.SOCIAL, "coast-ha"),
        ("NE46 9XY", Tenure.PRIVATE_RENTED, "rural-district"),  # priority 100 beats 200
        ("NE47 1AA", None, "rural-district"),  # every tenure: no need to ask
    ],
)
def test_each_referral_goes_to_exactly_one_service(
    postcode: str, tenure: Tenure | str | None, expected: str
) -> None:
    assert route(_services(), postcode=postcode, tenure=tenure).id == expected


def test_result_does_not_depend_on_file_order() -> None:
    services = _services()
    for order in itertools.permutations(services):
        assert route(list(order), postcode="NE46 9XY", tenure="private-rented").id == (
            "rural-district"
        )


def test_more_specific_area_wins_at_equal_priority() -> None:
    specific = {**SERVICES[3], "routing_priority": 100}
    services = list(
        Settings.model_validate({"housing_services": [SERVICES[2], specific]}).housing_services
    )
    assert route(services, postcode="NE46 9XY", tenure="private-rented").id == "hexham-v2"
    assert route(services, postcode="NE46 1XY", tenure="private-rented").id == "rural-district"


def test_outside_every_area_is_refused_with_a_readable_reason() -> None:
    with pytest.raises(RoutingError) as caught:
        route(_services(), postcode="SW1A 1AA", tenure=Tenure.OWNER_OCCUPIER)
    message = str(caught.value)
    assert "No housing service covers postcode district SW1A" in message
    assert "1AA" not in message  # the district only, never the full postcode


def test_wrong_tenure_is_refused() -> None:
    with pytest.raises(RoutingError) as caught:
        route(_services(), postcode="NE30 1AA", tenure=Tenure.SOCIAL)
    assert "does not take social housing homes" in str(caught.value)
    assert "landlord is responsible" in str(caught.value)


def test_unknown_tenure_asks_the_clinician_to_ask() -> None:
    with pytest.raises(RoutingError) as caught:
        route(_services(), postcode="NE30 1AA", tenure=None)
    assert str(caught.value).startswith("Ask the patient whether they own their home")


def test_no_postcode_is_refused() -> None:
    with pytest.raises(RoutingError, match="no valid home postcode"):
        route(_services(), postcode=None, tenure=Tenure.OWNER_OCCUPIER)


def test_a_service_without_districts_covers_anywhere() -> None:
    legacy = Settings.model_validate(
        {"housing_services": [{"id": "h", "name": "H", "fhir_base_url": "https://h.example/f"}]}
    ).housing_services
    assert route(legacy, postcode=None, tenure=None).id == "h"
    assert legacy[0].transport == "fhir"


def test_route_dataset_uses_the_form_tenure() -> None:
    dataset = MinimumDataset(
        nhs_number="9990000018",
        given_name="Ann",
        family_name="Test",
        birth_date=None,
        address_lines=["1 High Street"],
        city=None,
        postcode="NE25 8AA",
        phone=None,
        practice_ods="A12345",
        referrer="Dr X",
        referral_form=ReferralForm(tenure=Tenure.SOCIAL),
    )
    assert route_dataset(_services(), dataset).id == "coast-ha"


def test_postcode_parts() -> None:
    assert postcode_parts("ne25 9ab") == ("NE25", "NE25 9")
    assert postcode_parts("EC1A1BB") == ("EC1A", "EC1A 1")
    assert postcode_parts("NE25") is None


def test_bad_district_and_duplicate_ids_are_config_errors() -> None:
    bad = {**SERVICES[0], "postcode_districts": ["X"]}
    with pytest.raises(ValueError, match="not a postcode district"):
        Settings.model_validate({"housing_services": [bad]})
    with pytest.raises(ValueError, match="each id may appear only once"):
        Settings.model_validate({"housing_services": [SERVICES[0], SERVICES[0]]})
