"""Transactions (all or nothing, urn:uuid, ifNoneExist) and batches."""

from __future__ import annotations

import httpx

from healthy_homes.mock_server.store import MockStore

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _referral(nhs: str, ref_id: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS, "value": nhs}],
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={NHS}|{nhs}",
                },
            },
            {
                "fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "identifier": [{"system": "https://hh.example/ref", "value": ref_id}],
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
                },
                "request": {
                    "method": "POST",
                    "url": "ServiceRequest",
                    "ifNoneExist": f"identifier=https://hh.example/ref|{ref_id}",
                },
            },
            {
                "fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333",
                "resource": {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "focus": {"reference": "urn:uuid:22222222-2222-2222-2222-222222222222"},
                    "for": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
                },
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }


async def test_transaction_rewrites_urn_uuids_and_deduplicates(
    client: httpx.AsyncClient, store: MockStore
) -> None:
    r = await client.post("", json=_referral("9990000018", "r1"))
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created"] * 3
    patient, request, task = (e["resource"] for e in body["entry"])
    assert request["subject"]["reference"] == f"Patient/{patient['id']}"
    assert task["focus"]["reference"] == f"ServiceRequest/{request['id']}"
    again = (await client.post("", json=_referral("9990000018", "r1"))).json()
    assert [e["response"]["status"][:3] for e in again["entry"]] == ["200", "200", "201"]
    assert again["entry"][2]["resource"]["focus"]["reference"] == f"ServiceRequest/{request['id']}"
    assert store.count("Patient") == 1 and store.count("ServiceRequest") == 1


async def test_transaction_is_all_or_nothing(client: httpx.AsyncClient, store: MockStore) -> None:
    bundle = _referral("9990000018", "r2")
    bundle["entry"][2]["resource"]["status"] = "not-a-status"
    r = await client.post("", json=bundle)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert store.snapshot() == -1
    bundle = _referral("9990000018", "r2")
    bundle["entry"][2]["resource"]["focus"]["reference"] = "urn:uuid:nowhere"
    assert (await client.post("", json=bundle)).status_code == 400
    assert store.snapshot() == -1


async def test_conditional_reference_and_put_if_match(
    client: httpx.AsyncClient, store: MockStore
) -> None:
    await client.post("", json=_referral("9990000026", "r3"))
    patient = store.read("Patient", next(iter(store._current["Patient"]))).resource()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Flag",
                    "status": "active",
                    "code": {"text": "x"},
                    "subject": {"reference": f"Patient?identifier={NHS}|9990000026"},
                },
                "request": {"method": "POST", "url": "Flag"},
            },
            {
                "resource": patient | {"active": False},
                "request": {"method": "PUT", "url": f"Patient/{patient['id']}", "ifMatch": 'W/"9"'},
            },
        ],
    }
    before = store.snapshot()
    assert (await client.post("", json=bundle)).status_code == 412
    assert store.snapshot() == before
    bundle["entry"][1]["request"]["ifMatch"] = 'W/"1"'
    r = await client.post("", json=bundle)
    assert r.status_code == 200
    flag = r.json()["entry"][0]["resource"]
    assert flag["subject"]["reference"] == f"Patient/{patient['id']}"


async def test_batch_entries_succeed_or_fail_alone(client: httpx.AsyncClient) -> None:
    flag = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": flag, "request": {"method": "POST", "url": "Flag"}},
            {"resource": flag | {"status": "nope"}, "request": {"method": "POST", "url": "Flag"}},
            {"request": {"method": "GET", "url": "Flag?status=active"}},
            {"request": {"method": "GET", "url": "Flag/missing"}},
        ],
    }
    r = await client.post("", json=bundle)
    statuses = [e["response"]["status"][:3] for e in r.json()["entry"]]
    assert statuses == ["201", "422", "200", "404"]
    assert r.json()["entry"][2]["resource"]["total"] == 1
    assert r.json()["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_other_bundle_types_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("", json={"resourceType": "Bundle", "type": "collection"})
    assert r.status_code == 400
