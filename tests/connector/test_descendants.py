"""Acceptance: descendant concepts land on the right register, from Synthea bundles too."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector.run import run_once
from healthy_homes.store.db import Database
from tests.connector.helpers import NOW, memberships, practice, practice_server, settings

pytestmark = pytest.mark.e2e

SYNTHEA = "https://github.com/synthetichealth/synthea"
SCT = "http://snomed.info/sct"


def _entry(resource: dict) -> dict:
    full_url = f"urn:uuid:{resource['id']}"
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def synthea_bundle(name: str, born: str, conditions: list[tuple[str, str]]) -> tuple[str, dict]:
    """A patient bundle shaped like Synthea's FHIR R4 output (urn:uuid refs, Claims)."""
    patient_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    encounter_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name + "/enc"))
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": SYNTHEA, "value": patient_id}],
        "name": [{"use": "official", "family": name, "given": ["Test"]}],
        "gender": "female",
        "birthDate": born,
    }
    encounter = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"urn:uuid:{patient_id}"},
        "period": {"start": "2019-04-01T10:00:00+00:00", "end": "2019-04-01T10:15:00+00:00"},
    }
    entries = [_entry(patient), _entry(encounter)]
    for i, (code, display) in enumerate(conditions):
        entries.append(
            _entry(
                {
                    "resourceType": "Condition",
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/c{i}")),
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                    "code": "encounter-diagnosis",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [{"system": SCT, "code": code, "display": display}],
                        "text": display,
                    },
                    "subject": {"reference": f"urn:uuid:{patient_id}"},
                    "encounter": {"reference": f"urn:uuid:{encounter_id}"},
                    "onsetDateTime": "2019-04-01T10:00:00+00:00",
                    "recordedDate": "2019-04-01T10:00:00+00:00",
                }
            )
        )
    entries.append(
        _entry(
            {
                "resourceType": "Claim",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name + "/claim")),
                "status": "active",
                "patient": {"reference": f"urn:uuid:{patient_id}"},
            }
        )
    )
    return patient_id, {"resourceType": "Bundle", "type": "transaction", "entry": entries}


PEOPLE = {
    "Bronchitis": (
        "1950-02-03",
        [("185086009", "Chronic obstructive bronchitis (disorder)")],
        "copd",
    ),
    "Emphysema": ("1948-07-12", [("87433001", "Pulmonary emphysema (disorder)")], "copd"),
    "Childhood": ("2015-09-30", [("233678006", "Childhood asthma (disorder)")], "asthma"),
    "Bronchitis-acute": ("1990-01-01", [("10509002", "Acute bronchitis (disorder)")], None),
}


def test_descendant_concepts_from_synthea_bundles_land_on_the_right_register(
    db: Database,
) -> None:
    server = practice_server(patients=200, seed=3)
    try:
        server_ids = {}
        with httpx.Client(base_url=server.url) as http:
            for name, (born, conditions, _) in PEOPLE.items():
                synthea_id, bundle = synthea_bundle(name, born, conditions)
                report = http.post("/admin/load", json=bundle).raise_for_status().json()
                assert report["created"]["Condition"] == len(conditions)
                assert report["skipped"] == {"Claim": 1}
                found = http.get(
                    "/fhir/Patient", params={"identifier": f"{SYNTHEA}|{synthea_id}"}
                ).json()
                server_ids[name] = found["entry"][0]["resource"]["id"]
        config = settings(db, practice(server))
        report = asyncio.run(run_once(config, db, FixedClock(NOW)))
        assert report.failed == []
        on = {(r, p) for r, p, _ in memberships(db)}
        for name, (_, _, register) in PEOPLE.items():
            patient = server_ids[name]
            registers = {r for r, p in on if p == patient}
            assert registers == ({register} if register else set()), name
        # The generated practice codes descendants too; each live, unresolved one counts.
        expected = set()
        with httpx.Client(base_url=server.base_url + "/") as http:
            codes = {"185086009": "copd", "87433001": "copd", "233678006": "asthma"}
            bundle = http.get(
                "Condition",
                params={
                    "code": ",".join(f"{SCT}|{c}" for c in codes),
                    "_include": "Condition:subject",
                    "_count": "500",
                },
            ).json()
        patients = {
            e["resource"]["id"]: e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        }
        for entry in bundle["entry"]:
            c = entry["resource"]
            if (
                c["resourceType"] != "Condition"
                or c["clinicalStatus"]["coding"][0]["code"] != "active"
            ):
                continue
            subject = patients[c["subject"]["reference"].split("/")[1]]
            if subject.get("deceasedDateTime") or subject.get("active") is False:
                continue
            expected.add((codes[c["code"]["coding"][0]["code"]], subject["id"]))
        assert len(expected) >= 3
        assert expected <= on
    finally:
        server.stop()
