"""Bulk Data export: kick-off, status polling, manifest, ndjson, _since, _type, cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from healthy_homes.clock import FixedClock
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.bulk import BulkExports, exports_of
from healthy_homes.mock_server.paging import SUBSETTED
from healthy_homes.mock_server.store import MockStore, Version

BASE = "http://mock.test/fhir"
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
GROUP = "register-copd"


@pytest.fixture
def app(seeded: MockStore) -> FastAPI:
    return create_app(seeded)


@pytest.fixture
async def bulk(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE + "/") as c:
        yield c


async def _export(client: httpx.AsyncClient, url: str, **params: str) -> dict:
    kick = await client.get(url, params=params, headers=ASYNC)
    assert kick.status_code == 202, kick.text
    status = await client.get(kick.headers["content-location"])
    assert status.status_code == 200, status.text
    return dict(status.json())


async def _ndjson(client: httpx.AsyncClient, manifest: dict) -> dict[str, list[dict]]:
    out = {}
    for item in manifest["output"]:
        r = await client.get(item["url"])
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [json.loads(line) for line in r.text.splitlines()]
        assert len(lines) == item["count"] and all(x["resourceType"] == item["type"] for x in lines)
        out[item["type"]] = lines
    return out


def _live(store: MockStore, type_: str) -> list[Version]:
    snapshot = store.snapshot()
    versions = (store.record(seq) for seq in store.type_seqs(type_))
    return [v for v in versions if v.visible_at(snapshot)]


def _members(store: MockStore, group: str = GROUP) -> set[str]:
    members = store.read("Group", group).resource()["member"]
    return {m["entity"]["reference"] for m in members if not m.get("inactive")}


async def test_group_export_polls_then_delivers_a_manifest_and_ndjson(
    app: FastAPI, bulk: httpx.AsyncClient, seeded: MockStore
) -> None:
    exports_of(app).polls = 2
    exports_of(app).retry_after = 3
    kick = await bulk.get(f"Group/{GROUP}/$export", headers=ASYNC)
    assert kick.status_code == 202
    status_url = kick.headers["content-location"]
    assert status_url.startswith(BASE + "/")
    for poll in (1, 2):
        r = await bulk.get(status_url)
        assert r.status_code == 202
        assert r.headers["x-progress"] == f"in progress ({poll} of 2 polls)"
        assert r.headers["retry-after"] == "3"
    r = await bulk.get(status_url)
    assert r.status_code == 200
    manifest = r.json()
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["request"] == f"{BASE}/Group/{GROUP}/$export"
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert manifest["transactionTime"].startswith("2026-03-02T09:00:00.")
    files = await _ndjson(bulk, manifest)
    members = _members(seeded)
    assert {f"Patient/{p['id']}" for p in files["Patient"]} == members
    assert files["Condition"] and all(
        c["subject"]["reference"] in members for c in files["Condition"]
    )
    expected = sum(
        1 for v in _live(seeded, "Condition") if v.resource()["subject"]["reference"] in members
    )
    assert len(files["Condition"]) == expected
    assert (await bulk.get(status_url)).status_code == 200  # the manifest stays until DELETE


async def test_kick_off_needs_prefer_respond_async(bulk: httpx.AsyncClient) -> None:
    r = await bulk.get(f"Group/{GROUP}/$export")
    assert r.status_code == 400 and "respond-async" in r.text


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"_type": "Organization"}, "not in the Patient compartment"),
        ({"_type": "Nonsense"}, "not in the Patient compartment"),
        ({"_outputFormat": "text/csv"}, "_outputFormat"),
        ({"_since": "yesterday"}, "_since"),
        ({"_include": "Condition:subject"}, "does not support"),
        ({"_typeFilter": "Condition?nonsense=1"}, "_typeFilter"),
    ],
)
async def test_bad_kick_off_parameters_are_refused(
    bulk: httpx.AsyncClient, params: dict[str, str], problem: str
) -> None:
    r = await bulk.get(f"Group/{GROUP}/$export", params=params, headers=ASYNC)
    assert r.status_code == 400 and problem in r.text
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_unknown_group_is_404(bulk: httpx.AsyncClient) -> None:
    r = await bulk.get("Group/no-such-group/$export", headers=ASYNC)
    assert r.status_code == 404


async def test_type_restricts_the_output(bulk: httpx.AsyncClient) -> None:
    manifest = await _export(bulk, f"Group/{GROUP}/$export", _type="Condition")
    assert [o["type"] for o in manifest["output"]] == ["Condition"]


async def test_since_returns_changes_and_the_history_of_new_members(
    bulk: httpx.AsyncClient, seeded: MockStore, clock: FixedClock
) -> None:
    clock.advance(timedelta(days=30))
    since = clock.now().isoformat()
    clock.advance(timedelta(seconds=1))
    members = _members(seeded)
    # A member's Condition changes after _since.
    changed = next(
        v.resource()
        for v in _live(seeded, "Condition")
        if v.resource()["subject"]["reference"] == min(members)
    )
    changed["note"] = [{"text": "reviewed"}]
    seeded.update(changed)
    # A patient joins the register after _since; their older Conditions come too.
    group = seeded.read("Group", GROUP).resource()
    outsiders = {f"Patient/{p.id}" for p in _live(seeded, "Patient")} - members
    newcomer = next(
        ref
        for ref in sorted(outsiders)
        if any(c.resource()["subject"]["reference"] == ref for c in _live(seeded, "Condition"))
    )
    group["member"].append(
        {"entity": {"reference": newcomer}, "period": {"start": clock.now().date().isoformat()}}
    )
    seeded.update(group)
    manifest = await _export(bulk, f"Group/{GROUP}/$export", _since=since)
    files = await _ndjson(bulk, manifest)
    assert [p["id"] for p in files["Patient"]] == [newcomer.partition("/")[2]]
    newcomer_conditions = [
        v.id for v in _live(seeded, "Condition") if v.resource()["subject"]["reference"] == newcomer
    ]
    got = {c["id"] for c in files["Condition"]}
    assert got == {changed["id"], *newcomer_conditions}
    # System level: only what changed since.
    manifest = await _export(bulk, "$export", _since=since)
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Condition": 1, "Group": 1}


async def test_export_reads_the_snapshot_taken_at_kick_off(
    app: FastAPI, bulk: httpx.AsyncClient, seeded: MockStore
) -> None:
    exports_of(app).polls = 1
    kick = await bulk.get("Patient/$export", params={"_type": "Patient"}, headers=ASYNC)
    before = seeded.count("Patient")
    seeded.create({"resourceType": "Patient", "gender": "unknown"})
    assert (await bulk.get(kick.headers["content-location"])).status_code == 202
    manifest = (await bulk.get(kick.headers["content-location"])).json()
    assert manifest["output"][0]["count"] == before


async def test_system_and_patient_level_exports_cover_the_store(
    bulk: httpx.AsyncClient, seeded: MockStore
) -> None:
    manifest = await _export(bulk, "$export")
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {t: seeded.count(t) for t in counts}
    assert {"Organization", "Practitioner", "Patient", "Condition", "Group"} <= set(counts)
    manifest = await _export(bulk, "Patient/$export")
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert "Organization" not in counts and counts["Patient"] == seeded.count("Patient")


async def test_type_filter_and_elements(bulk: httpx.AsyncClient, seeded: MockStore) -> None:
    filter_ = "Condition?clinical-status=resolved"
    manifest = await _export(
        bulk, "$export", _type="Condition", _typeFilter=filter_, _elements="code,Patient.gender"
    )
    conditions = (await _ndjson(bulk, manifest))["Condition"]
    resolved = [
        v
        for v in _live(seeded, "Condition")
        if any(c["code"] == "resolved" for c in v.resource()["clinicalStatus"].get("coding", []))
    ]
    assert resolved and len(conditions) == len(resolved)
    for c in conditions:
        assert set(c) == {"resourceType", "id", "meta", "code"}
        assert SUBSETTED in c["meta"]["tag"]


async def test_delete_cancels_the_export(app: FastAPI, bulk: httpx.AsyncClient) -> None:
    exports_of(app).polls = 5
    kick = await bulk.get(f"Group/{GROUP}/$export", headers=ASYNC)
    status_url = kick.headers["content-location"]
    assert (await bulk.get(status_url)).status_code == 202
    assert (await bulk.delete(status_url)).status_code == 202
    assert (await bulk.get(status_url)).status_code == 404
    assert (await bulk.delete(status_url)).status_code == 404


async def test_output_files_go_with_their_job(bulk: httpx.AsyncClient) -> None:
    manifest = await _export(bulk, f"Group/{GROUP}/$export", _type="Patient")
    url = manifest["output"][0]["url"]
    job = url.split("/")[-2]
    assert (await bulk.get(url.replace("Patient.ndjson", "Condition.ndjson"))).status_code == 404
    assert (await bulk.delete(f"{BASE}/$export-status/{job}")).status_code == 202
    assert (await bulk.get(url)).status_code == 404


def test_exports_are_configurable_as_an_extension(seeded: MockStore) -> None:
    exports = BulkExports(polls=3)
    app = create_app(seeded, extensions=[exports])
    assert exports_of(app) is exports


async def test_capability_statement_lists_the_export_operations(bulk: httpx.AsyncClient) -> None:
    statement = (await bulk.get("metadata")).json()
    bulk_data = "http://hl7.org/fhir/uv/bulkdata"
    assert f"{bulk_data}/CapabilityStatement/bulk-data" in statement["instantiates"]
    rest = statement["rest"][0]
    assert {"name": "export", "definition": f"{bulk_data}/OperationDefinition/export"} in rest[
        "operation"
    ]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert by_type["Group"]["operation"][0]["definition"].endswith("/group-export")
    assert by_type["Patient"]["operation"][0]["definition"].endswith("/patient-export")
