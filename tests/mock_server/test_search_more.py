"""More search parameter types: strings, :missing, Group membership, referral resources."""

from __future__ import annotations

import httpx


async def _ids(client: httpx.AsyncClient, type_: str, params: dict) -> list[str]:
    r = await client.get(type_, params={**params, "_count": "1000"})
    assert r.status_code == 200, r.text
    return [
        e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


async def test_string_search_modes(seeded_client: httpx.AsyncClient) -> None:
    patient = (await seeded_client.get("Patient/pat-0000001")).json()
    family = patient["name"][0]["family"]
    starts = await _ids(seeded_client, "Patient", {"family": family[:3].lower()})
    exact = await _ids(seeded_client, "Patient", {"family:exact": family})
    wrong_case = await _ids(seeded_client, "Patient", {"family:exact": family.upper()})
    contains = await _ids(seeded_client, "Patient", {"name:contains": family[1:].lower()})
    assert "pat-0000001" in starts and "pat-0000001" in exact and "pat-0000001" in contains
    assert set(exact) <= set(starts)
    assert wrong_case == [] or family == family.upper()
    postcode = patient["address"][0]["postalCode"]
    assert "pat-0000001" in await _ids(seeded_client, "Patient", {"address-postalcode": postcode})


async def test_missing_modifier(seeded_client: httpx.AsyncClient) -> None:
    dead = await _ids(seeded_client, "Patient", {"death-date:missing": "false"})
    alive = await _ids(seeded_client, "Patient", {"death-date:missing": "true"})
    assert dead and len(dead) + len(alive) == 300
    resolved = await _ids(seeded_client, "Condition", {"abatement-date:missing": "false"})
    for cid in resolved:
        cond = (await seeded_client.get(f"Condition/{cid}")).json()
        assert cond["clinicalStatus"]["coding"][0]["code"] == "resolved"


async def test_group_membership_search(seeded_client: httpx.AsyncClient) -> None:
    groups = await _ids(seeded_client, "Group", {"identifier": "copd"})
    assert groups == ["register-copd"]
    group = (await seeded_client.get("Group/register-copd")).json()
    member = group["member"][0]["entity"]["reference"]
    found = await _ids(seeded_client, "Group", {"member": member})
    assert "register-copd" in found
    assert await _ids(seeded_client, "Group", {"type": "person", "actual": "true"})


async def test_appointments_today_with_their_patients(seeded_client: httpx.AsyncClient) -> None:
    r = await seeded_client.get(
        "Appointment",
        params={
            "date": "2026-03-02",
            "status": "booked,arrived",
            "_include": "Appointment:patient",
        },
    )
    entries = r.json()["entry"]
    appointments = [e["resource"] for e in entries if e["search"]["mode"] == "match"]
    patients = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "include"}
    assert appointments
    for a in appointments:
        assert a["participant"][0]["actor"]["reference"].split("/")[1] in patients
    # Practitioners are actors too, but Appointment:patient includes only Patients
    assert all(
        e["resource"]["resourceType"] == "Patient"
        for e in entries
        if e["search"]["mode"] == "include"
    )


async def test_task_and_service_request_parameters(client: httpx.AsyncClient) -> None:
    sr = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "identifier": [{"system": "https://hh.example/ref", "value": "r9"}],
        "subject": {"reference": "Patient/p9"},
        "authoredOn": "2026-03-01T10:00:00Z",
    }
    sr_id = (await client.post("ServiceRequest", json=sr)).json()["id"]
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": f"ServiceRequest/{sr_id}"},
        "for": {"reference": "Patient/p9"},
        "owner": {"reference": "Organization/housing"},
        "lastModified": "2026-03-01T10:05:00Z",
    }
    task_id = (await client.post("Task", json=task)).json()["id"]
    assert await _ids(client, "Task", {"focus": f"ServiceRequest/{sr_id}"}) == [task_id]
    assert await _ids(client, "Task", {"patient": "p9", "status": "requested"}) == [task_id]
    assert await _ids(client, "Task", {"owner": "Organization/housing"}) == [task_id]
    assert await _ids(client, "Task", {"modified": "ge2026-03-01T10:05:00Z"}) == [task_id]
    assert await _ids(client, "Task", {"modified": "gt2026-03-01T10:05:00Z"}) == []
    assert await _ids(client, "ServiceRequest", {"authored": "2026-03-01"}) == [sr_id]
    chained = {"focus:ServiceRequest.identifier": "https://hh.example/ref|r9"}
    assert await _ids(client, "Task", chained) == [task_id]
    assert await _ids(client, "Task", {"focus.identifier": "https://other|r9"}) == []
    r = await client.get("Task", params={"patient": "Practitioner/x"})
    assert r.status_code == 400
