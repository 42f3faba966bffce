"""The synthetic practice: valid identifiers, prevalence, appointments, registers."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date

import nhs_number
from fhir.resources.R4B import get_fhir_model_class

from healthy_homes.fhir.systems import NHS_NUMBER, ODS_ORGANISATION, SNOMED
from healthy_homes.mock_server.generator import generate_practice, nhs_numbers
from tests.mock_server.conftest import TODAY

COPD = {"13645005", "185086009", "87433001"}
ASTHMA = {"195967001", "233678006"}


def _by_type(resources: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in resources:
        out.setdefault(r["resourceType"], []).append(r)
    return out


def test_nhs_numbers_are_valid_sequential_and_in_the_999_range() -> None:
    first = list(itertools.islice(nhs_numbers(), 1000))
    assert first[0] == "9990000018"  # 999000000 has check digit 10: skipped
    assert all(n.startswith("999") and nhs_number.is_valid(n) for n in first)
    assert first == sorted(first) and len(set(first)) == 1000


def test_nhs_numbers_move_on_to_the_998_range_when_999_runs_out() -> None:
    tail = list(itertools.islice(nhs_numbers(999_999_990), 20))
    assert tail[0].startswith("99999999")
    assert any(n.startswith("998") for n in tail)
    assert all(nhs_number.is_valid(n) for n in tail)


def test_same_seed_same_practice_other_seed_other_practice() -> None:
    a = list(generate_practice(50, 7, TODAY))
    assert a == list(generate_practice(50, 7, TODAY))
    assert a != list(generate_practice(50, 8, TODAY))


def test_every_resource_is_valid_fhir_r4(practice_resources: list[dict]) -> None:
    for resource in practice_resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_patients_look_like_a_uk_practice(practice_resources: list[dict]) -> None:
    types = _by_type(practice_resources)
    org = types["Organization"][0]
    assert org["identifier"][0] == {"system": ODS_ORGANISATION, "value": "A12345"}
    patients = types["Patient"]
    assert len(patients) == 300
    for p in patients:
        ident = p["identifier"][0]
        assert ident["system"] == NHS_NUMBER and nhs_number.is_valid(ident["value"])
        assert p["generalPractitioner"][0]["reference"] == f"Organization/{org['id']}"
        postcode = p["address"][0]["postalCode"]
        assert postcode[:4] in {"NE25", "NE26", "NE27", "NE28", "NE29", "NE30"}
        assert len(postcode.split()[1]) == 3
        phone = p["telecom"][0]["value"]
        assert phone.startswith(("07700 900", "0191 498 0", "01632 960"))
    assert any("deceasedDateTime" in p for p in patients) or any(not p["active"] for p in patients)


def test_register_conditions_at_roughly_uk_prevalence() -> None:
    types = _by_type(list(generate_practice(5000, 11, TODAY)))
    patients = len(types["Patient"])
    codes: dict[str, set[str]] = {}
    for c in types["Condition"]:
        coding = c["code"]["coding"][0]
        assert coding["system"] == SNOMED
        assert c["subject"]["reference"].startswith("Patient/pat-")
        codes.setdefault(coding["code"], set()).add(c["subject"]["reference"])
    copd = set().union(*(codes.get(c, set()) for c in COPD))
    asthma = set().union(*(codes.get(c, set()) for c in ASTHMA))
    assert 0.012 < len(copd) / patients < 0.03
    assert 0.045 < len(asthma) / patients < 0.08
    # descendants, not just the parent concepts
    assert codes.get("185086009") and codes.get("87433001") and codes.get("233678006")
    statuses = Counter(c["clinicalStatus"]["coding"][0]["code"] for c in types["Condition"])
    assert statuses["resolved"] and statuses["inactive"]
    assert all(
        "abatementDateTime" in c
        for c in types["Condition"]
        if c["clinicalStatus"]["coding"][0]["code"] == "resolved"
    )
    assert codes.get("38341003")  # non-register conditions too


def test_falls_and_frailty_are_concentrated_in_over_65s() -> None:
    types = _by_type(list(generate_practice(3000, 3, TODAY)))
    born = {f"Patient/{p['id']}": date.fromisoformat(p["birthDate"]) for p in types["Patient"]}
    frail = {"248279007", "925791000000100", "925831000000107", "925861000000102"}
    ages = [
        (TODAY - born[c["subject"]["reference"]]).days // 365
        for c in types["Condition"]
        if c["code"]["coding"][0]["code"] in frail | {"161898004", "1912002", "129839007"}
    ]
    assert ages and sum(a >= 65 for a in ages) / len(ages) > 0.8


def test_appointments_around_today_with_realistic_statuses(
    practice_resources: list[dict],
) -> None:
    types = _by_type(practice_resources)
    register_refs = {
        m["entity"]["reference"] for g in types["Group"] for m in g["member"] if not m["inactive"]
    }
    by_day: dict[int, Counter[str]] = {}
    today_register = 0
    for a in types["Appointment"]:
        day = (date.fromisoformat(a["start"][:10]) - TODAY).days
        assert -7 <= day <= 7
        by_day.setdefault(day, Counter())[a["status"]] += 1
        patient = a["participant"][0]["actor"]["reference"]
        if day == 0 and patient in register_refs:
            today_register += 1
    assert today_register >= 3
    past = sum((by_day[d] for d in by_day if d < 0), Counter())
    future = sum((by_day[d] for d in by_day if d > 0), Counter())
    assert set(past) <= {"fulfilled", "noshow", "cancelled"} and past["fulfilled"]
    assert set(future) <= {"booked", "cancelled"} and future["booked"]
    assert set(by_day[0]) <= {"booked", "arrived", "fulfilled", "cancelled", "noshow"}


def test_registers_are_groups(practice_resources: list[dict]) -> None:
    groups = {g["identifier"][0]["value"]: g for g in _by_type(practice_resources)["Group"]}
    assert set(groups) == {"copd", "asthma", "falls", "high_risk"}
    for g in groups.values():
        assert g["type"] == "person" and g["actual"] is True
        assert g["member"] and all("start" in m["period"] for m in g["member"])
        assert g["quantity"] == sum(not m["inactive"] for m in g["member"])
