"""Receiving the connector's transaction: de-duplication, consent, minimum dataset, status."""

from __future__ import annotations

from sqlmodel import select

from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.store.models import ConsentDecision, HousingReferral
from tests.housing.world import START, Inbox, dataset, referral


def _rows(inbox: Inbox) -> list[HousingReferral]:
    with inbox.db.session() as session:
        return list(session.exec(select(HousingReferral)).all())


def test_a_retried_transaction_returns_the_existing_entries_and_creates_nothing(
    inbox: Inbox,
) -> None:
    bundle = referral("ref-1", dataset(1))

    first = inbox.send("north", bundle)
    again = inbox.send("north", bundle)

    assert first.status_code == again.status_code == 200
    created = first.json()
    assert created["type"] == "transaction-response"
    assert [e["response"]["status"] for e in created["entry"]] == ["201 Created"] * 4
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 4
    assert [e["response"]["location"] for e in again.json()["entry"]] == [
        e["response"]["location"] for e in created["entry"]
    ]
    assert len(_rows(inbox)) == 1
    task = inbox.task("north", "ref-1")
    assert task["status"] == "received"
    assert created["entry"][3]["response"]["location"].startswith(f"Task/{task['id']}/")


def test_the_same_referral_id_for_another_team_is_that_team_s_own(inbox: Inbox) -> None:
    inbox.send("north", referral("ref-2", dataset(2)))
    inbox.send("south", referral("ref-2", dataset(2)))
    assert {r.team_id for r in _rows(inbox)} == {"north", "south"}


def test_a_bundle_without_a_permit_consent_is_refused_and_nothing_is_kept(inbox: Inbox) -> None:
    denied = referral("ref-3", dataset(3), decision=ConsentDecision.DECLINED)
    withdrawn = referral("ref-4", dataset(4), withdrawn=START)
    no_consent = referral("ref-5", dataset(5))
    no_consent["entry"] = [
        e for e in no_consent["entry"] if e["resource"]["resourceType"] != "Consent"
    ]

    for bundle in (denied, withdrawn, no_consent):
        response = inbox.send("north", bundle)
        assert response.status_code == 422
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "business-rule"
        assert "Consent" in body["issue"][0]["diagnostics"]
    assert _rows(inbox) == []


def test_only_the_minimum_dataset_is_stored(inbox: Inbox) -> None:
    bundle = referral("ref-6", dataset(6))
    # Something the connector must never send: a receiver keeps none of it anyway.
    patient = bundle["entry"][0]["resource"]
    patient["gender"] = "female"
    patient["extension"] = [{"url": "https://example.org/ethnicity", "valueString": "x"}]
    assert inbox.send("north", bundle).status_code == 200

    [row] = _rows(inbox)
    assert set(row.dataset) == {
        "nhs_number",
        "given_name",
        "family_name",
        "birth_date",
        "address_lines",
        "city",
        "postcode",
        "phone",
        "practice_ods",
        "referrer",
        "reason",
        "notes",
    }
    assert row.dataset["nhs_number"] == "9990000006"
    assert "Tenure: private rented" in row.dataset["notes"]
    assert "ethnicity" not in str(row.dataset) and "female" not in str(row.dataset)


def test_the_fhir_base_needs_the_team_s_own_token(inbox: Inbox) -> None:
    bundle = referral("ref-7", dataset(7))
    with inbox.fhir("north", token=inbox.tokens["south"]) as wrong:
        assert wrong.post("", json=bundle).status_code == 401
    with inbox.fhir("north", token="nonsense") as bad:
        assert bad.get("Task", params={"identifier": "x"}).status_code == 401
    assert _rows(inbox) == []


def test_another_team_s_task_is_not_found(inbox: Inbox) -> None:
    inbox.send("north", referral("ref-8", dataset(8)))
    task = inbox.task("north", "ref-8")
    with inbox.fhir("south") as south:
        assert south.get(f"Task/{task['id']}").status_code == 404
        found = south.get("Task", params={"identifier": f"{HH_REFERRAL_ID}|ref-8"}).json()
        assert found["total"] == 0
    with inbox.fhir("north") as north:
        read = north.get(f"Task/{task['id']}")
        assert read.status_code == 200 and read.json()["status"] == "received"
        assert read.headers["etag"] == 'W/"1"'
