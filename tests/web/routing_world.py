"""A pop-up world with two housing services that split the country by postcode district.

"North" covers the district of the first flagged patient's real postcode (every
tenure); "Coast" covers TD15 and takes private homes only. Patients are moved by
changing their home address in the practice record (a FHIR update), as the practice
system would; a patient moved to ZE2 is outside every service's area.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthy_homes.config.models import HousingServiceConfig, PracticeConfig, Settings
from healthy_homes.referrals.routing import postcode_parts
from tests.web.world import PopupWorld, build_world

NORTH, COAST = "north-homes", "coast-homes"
COAST_POSTCODE, NOWHERE_POSTCODE = "TD15 1AB", "ZE2 9QJ"


def _service(world: PopupWorld, **fields: Any) -> HousingServiceConfig:
    return HousingServiceConfig.model_validate(
        {"fhir_base_url": world.housing.base_url, "ods_code": "HH001", **fields}
    )


def move(world: PopupWorld, patient: str, postcode: str) -> None:
    """Change the patient's home postcode in the practice record."""
    with world.fhir() as http:
        record = http.get(f"Patient/{patient}").json()
        addresses = record.get("address") or [{"use": "home", "line": ["1 Test Road"]}]
        addresses[0]["postalCode"] = postcode
        record["address"] = addresses
        http.put(f"Patient/{patient}", json=record).raise_for_status()


def home_postcode(world: PopupWorld, patient: str) -> str:
    """The patient's home postcode as the practice record holds it."""
    with world.fhir() as http:
        record = http.get(f"Patient/{patient}").json()
    return str(record["address"][0]["postalCode"])


def build_routing_world(tmp: Path) -> tuple[PopupWorld, str]:
    """The world, re-configured with two services; returns it and North's district."""
    world = build_world(tmp)
    anchor = world.flagged[0]
    parts = postcode_parts(home_postcode(world, anchor))
    assert parts is not None
    district = parts[0]
    practice = world.settings.practices[0].model_dump(mode="json") | {"housing_service": None}
    world.settings = Settings.model_validate(
        world.settings.model_dump(mode="json")
        | {
            "practices": [PracticeConfig.model_validate(practice).model_dump(mode="json")],
            "housing_services": [
                _service(
                    world,
                    id=NORTH,
                    name="North Safe and Healthy Homes",
                    postcode_districts=[district],
                ).model_dump(mode="json"),
                _service(
                    world,
                    id=COAST,
                    name="Coast Private Sector Housing",
                    postcode_districts=["TD15"],
                    tenures=["owner-occupier", "private-rented"],
                    remit="Private homes: damp, cold and hazards",
                ).model_dump(mode="json"),
            ],
        }
    )
    # Every other flagged patient is moved inside North's district, so tests choose.
    for patient in world.flagged[1:]:
        if (postcode_parts(home_postcode(world, patient)) or ("",))[0] != district:
            move(world, patient, f"{district} 1AA")
    return world, district
