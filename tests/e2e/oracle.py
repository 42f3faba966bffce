"""An independent reading of who should be flagged, straight from the practice server.

Deliberately written without the connector's code: plain HTTP, plain loops.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from typing import Any

import httpx

ACTIVE = {"active", "recurrence", "relapse"}


def fetch_all(base_url: str, resource_type: str) -> list[dict[str, Any]]:
    """Every resource of a type, following next links."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{base_url}/{resource_type}?_count=200"
    with httpx.Client() as http:
        while url:
            bundle = http.get(url).raise_for_status().json()
            found += [
                e["resource"]
                for e in bundle.get("entry", [])
                if e.get("search", {}).get("mode", "match") == "match"
            ]
            url = next(
                (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None
            )
    return found


def _codes(name: str) -> tuple[set[str], set[str], int | None]:
    data = json.loads(
        resources.files("healthy_homes.registers.codesets").joinpath(f"{name}.json").read_text()
    )
    return (
        {c["code"] for c in data["codes"]},
        {c["code"] for c in data["resolved_codes"]},
        data.get("min_age"),
    )


def _age(birth: str, today: date) -> int:
    born = date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _when(condition: dict[str, Any]) -> str:
    return (condition.get("onsetDateTime") or condition.get("recordedDate") or "")[:10]


def expected_flagged(base_url: str, today: date) -> set[str]:
    """Patients who are alive, registered, and on at least one register."""
    patients = {p["id"]: p for p in fetch_all(base_url, "Patient")}
    conditions = fetch_all(base_url, "Condition")
    eligible: set[str] = set()
    for register in ("copd", "asthma", "falls", "high_risk"):
        codes, resolved_codes, min_age = _codes(register)
        diagnosed: dict[str, str] = {}
        resolved: dict[str, str] = {}
        for c in conditions:
            pid = c["subject"]["reference"].split("/")[-1]
            code = {x["code"] for x in c["code"].get("coding", [])}
            if code & resolved_codes:
                resolved[pid] = max(resolved.get(pid, ""), _when(c))
            if not code & codes:
                continue
            clinical = c.get("clinicalStatus", {}).get("coding", [{}])[0].get("code", "active")
            verification = c.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
            if clinical not in ACTIVE or verification in ("refuted", "entered-in-error"):
                continue
            if c.get("abatementDateTime"):
                continue
            diagnosed[pid] = min(diagnosed.get(pid, "9999"), _when(c) or "0000")
        for pid, since in diagnosed.items():
            if pid in resolved and resolved[pid] >= since:
                continue
            patient = patients[pid]
            if patient.get("deceasedDateTime") or patient.get("deceasedBoolean"):
                continue
            if patient.get("active") is False:
                continue
            if min_age is not None and _age(patient["birthDate"], today) < min_age:
                continue
            eligible.add(pid)
    return eligible
