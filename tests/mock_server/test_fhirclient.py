"""An independent client (the SMART Python client, ``fhirclient``) against the server.

fhirclient parses every resource into its own strict R4 models and follows ``next``
links itself, so this checks the wire format as other people's code sees it.
"""

from __future__ import annotations

import pytest
from fhirclient import client
from fhirclient.models.condition import Condition
from fhirclient.models.flag import Flag
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException

from healthy_homes.mock_server.server import RunningMockServer

SCT = "http://snomed.info/sct"


@pytest.fixture
def smart(mock_fhir_server: RunningMockServer) -> client.FHIRClient:
    return client.FHIRClient(
        settings={"app_id": "healthy-homes-tests", "api_base": mock_fhir_server.base_url + "/"}
    )


def _store_condition_ids(server: RunningMockServer, code: str) -> set[str]:
    store = server.store
    return {
        store.record(seq).id
        for seq in store.lookup("Condition", ("code",), code)
        if store.record(seq).visible_at(store.snapshot())
    }


def test_read_a_patient(smart: client.FHIRClient) -> None:
    patient = Patient.read("pat-0000001", smart.server)
    assert patient.id == "pat-0000001"
    assert patient.identifier[0].system == "https://fhir.nhs.uk/Id/nhs-number"
    assert patient.meta.versionId == "1"
    assert patient.address[0].postalCode.startswith("NE")


def test_search_and_page_through_every_match(
    smart: client.FHIRClient, mock_fhir_server: RunningMockServer
) -> None:
    search = Condition.where(struct={"code": f"{SCT}|195967001", "_count": "4"})
    bundles = list(search.perform_iter(smart.server))
    assert len(bundles) > 2
    ids = [e.resource.id for b in bundles for e in (b.entry or [])]
    assert len(ids) == len(set(ids))
    assert set(ids) == _store_condition_ids(mock_fhir_server, "195967001")
    for b in bundles:
        assert all(e.resource.code.coding[0].code == "195967001" for e in b.entry or [])


def test_search_with_include(smart: client.FHIRClient) -> None:
    search = Condition.where(struct={"code": "13645005,185086009,87433001", "_count": "3"})
    search.include("subject")
    resources = list(search.perform_resources_iter(smart.server))
    conditions = [r for r in resources if isinstance(r, Condition)]
    patients = {r.id for r in resources if isinstance(r, Patient)}
    assert conditions
    assert {c.subject.reference.split("/")[1] for c in conditions} <= patients


def test_create_then_search_sees_it(smart: client.FHIRClient) -> None:
    flag = Flag(
        {
            "resourceType": "Flag",
            "status": "active",
            "code": {"text": "Healthy Homes: eligible for housing support"},
            "subject": {"reference": "Patient/pat-0000001"},
        }
    )
    created = flag.create(smart.server)
    assert created["id"]
    found = list(Flag.where(struct={"patient": "pat-0000001"}).perform_resources_iter(smart.server))
    assert [f.id for f in found] == [created["id"]]


def test_error_reaches_the_client(smart: client.FHIRClient) -> None:
    with pytest.raises(FHIRNotFoundException) as caught:
        Patient.read("does-not-exist", smart.server)
    assert caught.value.response.status_code == 404
    assert caught.value.response.json()["resourceType"] == "OperationOutcome"
