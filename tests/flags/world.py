"""A small practice for flag, consent and CDS Hooks tests: real store, real mock servers.

Patients are loaded into a practice-mode mock FHIR server; register membership is
seeded in our store (as a sync would leave it). Databases are copied from one
migrated template, so each test starts from a fresh schema without re-running Alembic.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.fhir.systems import NHS_NUMBER
from healthy_homes.mock_server.generator import nhs_numbers
from healthy_homes.registers.codesets import load_codeset
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.store.db import Database
from healthy_homes.store.models import RegisterMembership

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PRACTICE = "A12345"
HOUSING_ODS = "HH001"
CLINICIAN = "Practitioner/dr-demo"
NHS = list(islice(nhs_numbers(), 20))

_template: Path | None = None


def fresh_db(directory: Path, name: str = "hh.db") -> Database:
    """A database at the current schema head, copied from a template migrated once."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="hh-template-"))
        template = Database(f"sqlite:///{folder / 'template.db'}")
        template.upgrade()
        template.dispose()
        _template = folder / "template.db"
    target = directory / name
    shutil.copyfile(_template, target)
    return Database(f"sqlite:///{target}")


def registers() -> list[RegisterDefinition]:
    """The four built-in registers, with their code sets' age bands."""
    found = []
    for name in ("copd", "asthma", "falls", "high_risk"):
        codeset = load_codeset(name)
        found.append(RegisterDefinition(name, codeset, codeset.min_age, codeset.max_age))
    return found


def patient(
    patient_id: str, index: int, *, birth: str = "1948-03-04", **extra: Any
) -> dict[str, Any]:
    """A synthetic Patient with an NHS number in the 999 range, a home address and a phone."""
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "active": True,
        "identifier": [{"system": NHS_NUMBER, "value": NHS[index]}],
        "name": [{"use": "official", "family": f"Testperson{index}", "given": ["Alex", "J"]}],
        "birthDate": birth,
        "address": [
            {
                "use": "home",
                "line": [f"{index} Front Street"],
                "city": "Tynemouth",
                "postalCode": "NE30 4AA",
            }
        ],
        "telecom": [{"system": "phone", "value": "01910000000"}],
        **extra,
    }


def on_register(
    db: Database, patient_id: str, register: str, since: date | None = date(2019, 5, 1)
) -> None:
    """Seed one register membership, as a sync would have stored it."""
    with db.session() as session:
        session.add(
            RegisterMembership(
                practice_ods=PRACTICE,
                register_name=register,
                patient_id=patient_id,
                since=since,
                condition_ids=[f"cond-{patient_id}-{register}"],
                updated_at=NOW,
            )
        )


def housing_service(url: str) -> HousingServiceConfig:
    """The housing service config for a housing-mode mock server."""
    return HousingServiceConfig.model_validate(
        {
            "id": "shh",
            "name": "Safe and Healthy Homes",
            "ods_code": HOUSING_ODS,
            "fhir_base_url": url,
        }
    )


def practice_server(factory: Any) -> Any:
    """A practice server (from ``mock_fhir_factory``) with p0..p3 alive and p4 deceased."""
    server = factory(patients=0)
    people = [patient(f"p{i}", i) for i in range(4)]
    people.append(patient("p4", 4, deceasedDateTime="2026-10-01"))
    server.store.load(people)
    return server
