"""Search semantics over the seeded practice, in-process."""

from __future__ import annotations

import httpx
import pytest

from healthy_homes.mock_server.store import MockStore

SCT = "http://snomed.info/sct"
COPD_CODES = ("13645005", "185086009", "87433001")


async def _all(client: httpx.AsyncClient, type_: str, params: dict | None = None) -> list[dict]:
    """Follow next links; return every entry."""
    r = await client.get(type_, params=params)
    assert r.status_code == 200, r.text
    bundle = r.json()
    entries = list(bundle.get("entry", []))
    seen_links = set()
    while nxt := next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None):
        assert nxt.startswith("http://mock.test/fhir/") and nxt not in seen_links
        seen_links.add(nxt)
        bundle = (await client.get(nxt)).json()
        entries += bundle.get("entry", [])
    return entries


def _copd_in_store(store: MockStore) -> set[str]:
    out = set()
    for seq in store.type_seqs("Condition"):
        res = store.record(seq).resource()
        if res["code"]["coding"][0]["code"] in COPD_CODES:
            out.add(res["id"])
    return out


async def test_token_search_with_system_and_bare_code(
    seeded_client: httpx.AsyncClient, seeded: MockStore
) -> None:
    codes = ",".join(f"{SCT}|{c}" for c in COPD_CODES)
    with_system = await _all(seeded_client, "Condition", {"code": codes, "_count": "2"})
    bare = await _all(seeded_client, "Condition", {"code": ",".join(COPD_CODES)})
    ids = {e["resource"]["id"] for e in with_system}
    assert ids == {e["resource"]["id"] for e in bare} == _copd_in_store(seeded)
    assert len(ids) == len(with_system)
    wrong_system = await _all(seeded_client, "Condition", {"code": f"http://other|{COPD_CODES[0]}"})
    assert wrong_system == []


async def test_patient_reference_forms(seeded_client: httpx.AsyncClient) -> None:
    first = (await seeded_client.get("Condition", params={"_count": "1"})).json()["entry"][0]
    ref = first["resource"]["subject"]["reference"]
    pid = ref.split("/")[1]
    forms = [
        {"patient": ref},
        {"patient": pid},
        {"subject": ref},
        {"subject:Patient": pid},
        {"patient": f"http://mock.test/fhir/{ref}"},
    ]
    results = [
        {e["resource"]["id"] for e in await _all(seeded_client, "Condition", f)} for f in forms
    ]
    assert all(r == results[0] for r in results) and first["resource"]["id"] in results[0]


async def test_clinical_status_and_not_modifier(seeded_client: httpx.AsyncClient) -> None:
    active = await _all(seeded_client, "Condition", {"clinical-status": "active"})
    others = await _all(seeded_client, "Condition", {"clinical-status:not": "active"})
    everything = await _all(seeded_client, "Condition")
    assert len(active) + len(others) == len(everything)
    assert all(e["resource"]["clinicalStatus"]["coding"][0]["code"] != "active" for e in others)


@pytest.mark.parametrize(
    ("prefix", "check"),
    [
        ("ge", lambda d, x: d >= x),
        ("gt", lambda d, x: d > x),
        ("lt", lambda d, x: d < x),
        ("le", lambda d, x: d <= x),
        ("eq", lambda d, x: d == x),
    ],
)
async def test_date_prefixes_on_appointment_date(
    seeded_client: httpx.AsyncClient, prefix: str, check: object
) -> None:
    everything = await _all(seeded_client, "Appointment")
    day = "2026-03-02"
    found = await _all(seeded_client, "Appointment", {"date": f"{prefix}{day}"})
    expected = {e["resource"]["id"] for e in everything if check(e["resource"]["start"][:10], day)}  # type: ignore[operator]
    assert {e["resource"]["id"] for e in found} == expected and expected


async def test_date_range_and_status_together(seeded_client: httpx.AsyncClient) -> None:
    found = await _all(
        seeded_client,
        "Appointment",
        [("date", "ge2026-03-02"), ("date", "lt2026-03-03"), ("status", "booked,arrived")],
    )
    assert found
    for e in found:
        assert e["resource"]["start"].startswith("2026-03-02")
        assert e["resource"]["status"] in ("booked", "arrived")


async def test_birthdate_partial_and_identifier(seeded_client: httpx.AsyncClient) -> None:
    old = await _all(seeded_client, "Patient", {"birthdate": "lt1950"})
    assert old and all(e["resource"]["birthDate"] < "1950" for e in old)
    nhs = old[0]["resource"]["identifier"][0]["value"]
    one = await _all(
        seeded_client, "Patient", {"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{nhs}"}
    )
    assert [e["resource"]["id"] for e in one] == [old[0]["resource"]["id"]]
    chained = await _all(
        seeded_client,
        "Condition",
        {"patient.identifier": f"https://fhir.nhs.uk/Id/nhs-number|{nhs}"},
    )
    assert all(
        e["resource"]["subject"]["reference"] == f"Patient/{one[0]['resource']['id']}"
        for e in chained
    )


async def test_last_updated_watermark_and_write_visibility(client: httpx.AsyncClient) -> None:
    flag = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p"},
    }
    first = (await client.post("Flag", json=flag)).json()
    mark = first["meta"]["lastUpdated"]
    assert await _all(client, "Flag", {"_lastUpdated": f"gt{mark}"}) == []
    second = (await client.post("Flag", json=flag)).json()
    newer = await _all(client, "Flag", {"_lastUpdated": f"gt{mark}"})
    assert [e["resource"]["id"] for e in newer] == [second["id"]]  # no search cache
    ge = await _all(client, "Flag", {"_lastUpdated": f"ge{mark}"})
    assert [e["resource"]["id"] for e in ge] == [first["id"], second["id"]]
    lt = await _all(client, "Flag", {"_lastUpdated": f"lt{second['meta']['lastUpdated']}"})
    assert [e["resource"]["id"] for e in lt] == [first["id"]]


async def test_sort_count_total_and_paging(seeded_client: httpx.AsyncClient) -> None:
    asc = await _all(seeded_client, "Patient", {"_sort": "_lastUpdated", "_count": "7"})
    desc = await _all(seeded_client, "Patient", {"_sort": "-_lastUpdated", "_count": "7"})
    stamps = [e["resource"]["meta"]["lastUpdated"] for e in asc]
    assert stamps == sorted(stamps) and len(asc) == 300
    assert [e["resource"]["id"] for e in desc] == [e["resource"]["id"] for e in asc][::-1]
    r = (await seeded_client.get("Patient", params={"_count": "5", "_total": "accurate"})).json()
    assert r["total"] == 300 and len(r["entry"]) == 5
    r = (await seeded_client.get("Patient", params={"_summary": "count"})).json()
    assert r["total"] == 300 and "entry" not in r
    r = (await seeded_client.get("Patient", params={"_count": "0"})).json()
    assert r["total"] == 300 and "entry" not in r


async def test_post_search_equals_get_search(seeded_client: httpx.AsyncClient) -> None:
    got = (await seeded_client.get("Condition", params={"code": "195967001"})).json()
    posted = (await seeded_client.post("Condition/_search", data={"code": "195967001"})).json()
    assert [e["fullUrl"] for e in got["entry"]] == [e["fullUrl"] for e in posted["entry"]]


async def test_unknown_parameters_are_refused_unless_lenient(
    seeded_client: httpx.AsyncClient,
) -> None:
    for params in (
        {"foo": "1"},
        {"code:text": "asthma"},
        {"_sort": "date"},
        {"_revinclude": "Flag:subject"},
        {"_include": "Condition:nope"},
        {"_include:iterate": "Condition:subject"},
        {"date": "gt-nonsense"},
        {"_count": "many"},
    ):
        r = await seeded_client.get("Condition", params=params)
        assert r.status_code == 400, params
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await seeded_client.get(
        "Condition", params={"foo": "1", "_count": "1"}, headers={"Prefer": "handling=lenient"}
    )
    assert r.status_code == 200
    outcome = r.json()["entry"][-1]
    assert outcome["search"]["mode"] == "outcome" and "foo" in str(outcome["resource"])
    r = await seeded_client.get("Condition", params={"_format": "xml"})
    assert r.status_code == 406


async def test_include_subject(seeded_client: httpx.AsyncClient) -> None:
    r = await seeded_client.get(
        "Condition", params={"code": "195967001", "_include": "Condition:subject", "_count": "5"}
    )
    entries = r.json()["entry"]
    matches = [e for e in entries if e["search"]["mode"] == "match"]
    included = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "include"}
    wanted = {e["resource"]["subject"]["reference"].split("/")[1] for e in matches}
    assert included == wanted
    assert all(
        e["resource"]["resourceType"] == "Patient"
        for e in entries
        if e["search"]["mode"] == "include"
    )


async def test_elements_subsets_and_tags(seeded_client: httpx.AsyncClient) -> None:
    r = await seeded_client.get("Patient", params={"_elements": "birthDate", "_count": "3"})
    for e in r.json()["entry"]:
        res = e["resource"]
        assert set(res) == {"resourceType", "id", "meta", "birthDate"}
        assert res["meta"]["tag"][-1]["code"] == "SUBSETTED"


async def test_corrupt_page_token_is_a_400(seeded_client: httpx.AsyncClient) -> None:
    r = await seeded_client.get("Patient", params={"_page_token": "garbage!!"})
    assert r.status_code == 400
