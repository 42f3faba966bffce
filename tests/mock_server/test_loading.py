"""Loading external Bundles: Synthea-style transactions, collections, the admin endpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from healthy_homes.mock_server.loading import bundle_files, load_bundle, load_path
from healthy_homes.mock_server.store import MockStore

DATA = Path(__file__).parent / "data" / "synthea"
SYN = "https://github.com/synthetichealth/synthea"
COPD_PATIENT = "3d9f5c74-7b20-4e3c-9f63-4a5b6c7d8e01"
ASTHMA_PATIENT = "4e0a6d85-8c31-4f4d-a074-5b6c7d8e9f01"


async def _only(client: httpx.AsyncClient, url: str, **params: str) -> dict:
    bundle = (await client.get(url, params=params)).json()
    assert bundle.get("total") == 1, bundle
    return dict(bundle["entry"][0]["resource"])


def test_directory_order_puts_synthea_shared_files_first() -> None:
    names = [p.name for p in bundle_files(DATA)]
    assert names[0].startswith("hospitalInformation")
    assert names[1].startswith("practitionerInformation")
    assert len(names) == 4


async def test_synthea_bundles_load_and_are_searchable_with_references_resolved(
    store: MockStore, client: httpx.AsyncClient
) -> None:
    report = load_path(store, DATA)
    assert report.failures == []
    assert report.bundles == 4
    assert dict(report.created) == {
        "Organization": 1,
        "Location": 1,
        "Practitioner": 1,
        "PractitionerRole": 1,
        "Patient": 2,
        "Encounter": 2,
        "Condition": 2,
        "CarePlan": 1,
    }
    assert dict(report.skipped) == {"Claim": 1, "Provenance": 1, "CareTeam": 1}

    copd = await _only(client, "Condition", code="http://snomed.info/sct|185086009")
    patient_ref = copd["subject"]["reference"]
    assert patient_ref.startswith("Patient/") and COPD_PATIENT not in patient_ref
    patient = (await client.get(patient_ref)).json()
    assert patient["identifier"] == [{"system": SYN, "value": COPD_PATIENT}]
    found = await _only(client, "Patient", identifier=f"{SYN}|{COPD_PATIENT}")
    assert found["id"] == patient["id"]
    assert (await _only(client, "Condition", patient=patient_ref))["id"] == copd["id"]

    encounter = (await client.get(copd["encounter"]["reference"])).json()
    assert encounter["subject"]["reference"] == patient_ref
    org = (await client.get(encounter["serviceProvider"]["reference"])).json()
    assert org["name"] == "RIVERSIDE TEST HOSPITAL"
    practitioner = (await client.get(encounter["participant"][0]["individual"]["reference"])).json()
    assert practitioner["resourceType"] == "Practitioner"
    location = (await client.get(encounter["location"][0]["location"]["reference"])).json()
    assert location["managingOrganization"]["reference"] == f"Organization/{org['id']}"

    asthma = await _only(client, "Condition", code="http://snomed.info/sct|233678006")
    assert asthma["subject"]["reference"] != patient_ref
    plan = await _only(client, "CarePlan", subject=asthma["subject"]["reference"])
    assert plan["addresses"] == [{"reference": f"Condition/{asthma['id']}"}]
    # CareTeam is not held here: the reference keeps a display and loses its target.
    assert plan["careTeam"] == [{"display": "CareTeam (not held by this server)"}]


def test_shared_data_loaded_twice_is_not_duplicated(store: MockStore) -> None:
    first = load_path(store, DATA / "hospitalInformation1717000000000.json")
    again = load_path(store, DATA / "hospitalInformation1717000000000.json")
    assert dict(first.created) == {"Organization": 1, "Location": 1}
    assert dict(again.created) == {} and dict(again.existing) == first.created
    assert store.count("Organization") == 1


def test_a_bad_file_is_reported_and_the_rest_still_load(store: MockStore, tmp_path: Path) -> None:
    # Patient bundles without the shared files: their conditional references match nothing.
    shutil.copy(DATA / f"Isla789_Patel012_{ASTHMA_PATIENT}.json", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "hospitalInformation1.json").write_text(
        (DATA / "hospitalInformation1717000000000.json").read_text()
    )
    report = load_path(store, tmp_path)
    problems = dict(report.failures)
    assert problems["broken.json"] == "not valid JSON"
    assert "Practitioner matched 0" in problems[f"Isla789_Patel012_{ASTHMA_PATIENT}.json"]
    assert report.created["Organization"] == 1 and store.count("Patient") == 0
    assert "2 failed" in report.summary()


def test_collection_bundles_keep_their_ids(store: MockStore) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "http://elsewhere.example/fhir/Patient/p1",
                "resource": {"resourceType": "Patient", "id": "p1", "gender": "female"},
            },
            {
                "fullUrl": "urn:uuid:0f0f0f0f-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "http://elsewhere.example/fhir/Patient/p1"},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001"}]},
                },
            },
        ],
    }
    report = load_bundle(store, bundle)
    assert dict(report.created) == {"Patient": 1, "Condition": 1}
    assert store.read("Patient", "p1").resource()["gender"] == "female"
    snapshot = store.snapshot()
    conditions = [store.record(s) for s in store.type_seqs("Condition")]
    assert [v.resource()["subject"] for v in conditions if v.visible_at(snapshot)] == [
        {"reference": "Patient/p1"}
    ]


async def test_admin_load_endpoint(store: MockStore, client: httpx.AsyncClient) -> None:
    body = json.loads((DATA / "hospitalInformation1717000000000.json").read_text())
    r = await client.post("http://mock.test/admin/load", json=body)
    assert r.status_code == 200
    assert r.json()["created"] == {"Location": 1, "Organization": 1}
    r = await client.post("http://mock.test/admin/load", content=b"{oops")
    assert r.status_code == 400
    r = await client.post("http://mock.test/admin/load", json={"resourceType": "Patient"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.post(
        "http://mock.test/admin/load", json={"resourceType": "Bundle", "type": "document"}
    )
    assert r.status_code == 400 and "expected one of" in r.text


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_load_reports_counts_by_type_for_transactions_and_batches(
    store: MockStore, kind: str
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "resource": {"resourceType": "Organization", "name": "Example"},
                "request": {"method": "POST", "url": "Organization"},
            }
        ],
    }
    assert load_bundle(store, bundle).created == {"Organization": 1}
