"""REST behaviour over the ASGI app: read, create, update, errors, capability."""

from __future__ import annotations

import httpx
from fhir.resources.R4B import get_fhir_model_class

from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.params import SEARCH_PARAMS
from healthy_homes.mock_server.store import MockStore

FHIR_JSON = "application/fhir+json"


def _flag(subject: str = "Patient/pat-0000001", ident: str | None = None) -> dict:
    flag: dict = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "Healthy Homes: eligible"},
        "subject": {"reference": subject},
    }
    if ident:
        flag["identifier"] = [{"system": "https://hh.example/flag", "value": ident}]
    return flag


async def test_metadata_tells_the_truth(client: httpx.AsyncClient) -> None:
    r = await client.get("metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith(FHIR_JSON)
    cs = r.json()
    get_fhir_model_class("CapabilityStatement").model_validate(cs)
    rest = cs["rest"][0]
    types = {res["type"]: res for res in rest["resource"]}
    for needed in (
        "Patient",
        "Condition",
        "Appointment",
        "Flag",
        "Consent",
        "ServiceRequest",
        "Task",
        "Organization",
        "Group",
        "Practitioner",
    ):
        assert needed in types
    cond = types["Condition"]
    assert {p["name"] for p in cond["searchParam"]} >= {"code", "patient", "_lastUpdated"}
    assert "Condition:subject" in cond["searchInclude"]
    assert cond["conditionalCreate"] is True and cond["versioning"] == "versioned-update"
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    # every advertised parameter is accepted by search
    for type_, params in SEARCH_PARAMS.items():
        for name in params:
            r = await client.get(type_, params={f"{name}:missing": "true"})
            assert r.status_code == 200, (type_, name, r.text)


async def test_create_read_update_with_etags(client: httpx.AsyncClient) -> None:
    r = await client.post("Flag", json=_flag())
    assert r.status_code == 201
    created = r.json()
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"http://mock.test/fhir/Flag/{created['id']}/_history/1"
    r = await client.get(f"Flag/{created['id']}")
    assert r.status_code == 200 and r.headers["etag"] == 'W/"1"'
    body = r.json() | {"status": "inactive"}
    r = await client.put(f"Flag/{created['id']}", json=body, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    r = await client.put(f"Flag/{created['id']}", json=body, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412
    assert r.json()["resourceType"] == "OperationOutcome"
    r = await client.get(f"Flag/{created['id']}/_history/1")
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = await client.get(f"Flag/{created['id']}/_history/9")
    assert r.status_code == 404


async def test_prefer_return_minimal(client: httpx.AsyncClient) -> None:
    r = await client.post("Flag", json=_flag(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and "location" in r.headers


async def test_conditional_create(client: httpx.AsyncClient) -> None:
    cond = {"If-None-Exist": "identifier=https://hh.example/flag|f1"}
    r1 = await client.post("Flag", json=_flag(ident="f1"), headers=cond)
    assert r1.status_code == 201
    r2 = await client.post("Flag", json=_flag(ident="f1"), headers=cond)
    assert r2.status_code == 200 and r2.json()["id"] == r1.json()["id"]
    r = await client.get("Flag", params={"identifier": "https://hh.example/flag|f1"})
    assert r.json()["total"] == 1
    await client.post("Flag", json=_flag(ident="f1"))  # an unconditional duplicate
    r3 = await client.post("Flag", json=_flag(ident="f1"), headers=cond)
    assert r3.status_code == 412
    r4 = await client.post("Flag", json=_flag(), headers={"If-None-Exist": "bogus=1"})
    assert r4.status_code == 400


async def test_invalid_writes_are_refused_with_an_outcome_naming_the_problem(
    client: httpx.AsyncClient,
) -> None:
    bad = _flag() | {"status": "maybe"}
    del bad["subject"]
    r = await client.post("Flag", json=bad)
    assert r.status_code == 422
    issues = r.json()["issue"]
    paths = {i["expression"][0] for i in issues}
    assert {"Flag.subject", "Flag.status"} <= paths
    assert "maybe" not in r.text  # values are not echoed
    r = await client.post("Flag", content=b"{not json", headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.post("Flag", json=_flag() | {"resourceType": "Patient"})
    assert r.status_code == 400
    r = await client.put("Flag/other", json=_flag() | {"id": "mine"})
    assert r.status_code == 400


async def test_errors_are_operation_outcomes(client: httpx.AsyncClient) -> None:
    for method, url in [
        ("GET", "Nonsense"),
        ("GET", "Patient/missing"),
        ("PATCH", "Patient/x"),
        ("GET", "../elsewhere"),
    ]:
        r = await client.request(method, url)
        assert r.status_code >= 400
        assert r.headers["content-type"].startswith(FHIR_JSON)
        assert r.json()["resourceType"] == "OperationOutcome"


async def test_delete_then_read_gives_410(client: httpx.AsyncClient) -> None:
    r = await client.post("Flag", json=_flag())
    fid = r.json()["id"]
    assert (await client.delete(f"Flag/{fid}")).status_code == 204
    assert (await client.get(f"Flag/{fid}")).status_code == 410


async def test_capability_hooks_let_extensions_describe_themselves(store: MockStore) -> None:
    from fastapi import FastAPI

    class Export:
        def install(self, app: FastAPI) -> None:
            def hook(statement: dict) -> None:
                statement["rest"][0].setdefault("operation", []).append(
                    {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/x"}
                )

            app.state.capability_hooks.append(hook)

    app = create_app(store, extensions=[Export()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/fhir/") as c:
        cs = (await c.get("metadata")).json()
    assert any(op["name"] == "export" for op in cs["rest"][0]["operation"])
