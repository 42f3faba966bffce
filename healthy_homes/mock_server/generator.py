"""A synthetic UK GP practice as a stream of FHIR R4 JSON resources, deterministic by seed.

Output order: the practice Organization and its GPs, then each Patient followed by
its Conditions, then Appointments around ``today``, then one Group per register.
Only small per-patient facts are remembered between patients (a status byte, and
register memberships), so a million patients stream in constant-ish memory.

NHS numbers are taken in order from 999 000 000 0 upward, skipping prefixes whose
Modulus 11 check digit would be 10. The 999 range holds 909,091 valid numbers;
beyond that the generator continues in the 998 range, also in the never-issued 9
block (see ``nhs_number.constants``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from nhs_number.validate import calculate_checksum

from healthy_homes.fhir.systems import (
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    NHS_NUMBER,
    ODS_ORGANISATION,
    SNOMED,
)
from healthy_homes.mock_server import synthetic_data as data
from healthy_homes.mock_server.store import MockStore

JSON = dict[str, Any]
T = TypeVar("T")

REGISTERS = ("copd", "asthma", "falls", "high_risk")
REGISTER_NAMES = {
    "copd": "COPD register",
    "asthma": "Asthma register",
    "falls": "Falls register",
    "high_risk": "High risk register (frailty or housebound)",
}
REGISTER_SYSTEM = "https://mock-practice.example.org/Id/register"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
APPOINTMENT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"
LONDON = ZoneInfo("Europe/London")

_ALIVE, _DECEASED, _LEFT = 0, 1, 2


def nhs_numbers(start_prefix: int = 999_000_000) -> Iterator[str]:
    """Valid synthetic NHS numbers in ascending order (then the 998 range)."""
    prefix = start_prefix
    block_end = (prefix // 1_000_000 + 1) * 1_000_000
    while True:
        if prefix >= block_end:
            prefix = (prefix // 1_000_000 - 2) * 1_000_000
            block_end = prefix + 1_000_000
            if prefix < 900_000_000:
                raise RuntimeError("synthetic NHS number ranges exhausted")
        digits = str(prefix)
        check = calculate_checksum(digits)
        prefix += 1
        if check is not None and check < 10:
            yield f"{digits}{check}"


@dataclass
class _Practice:
    rng: random.Random
    today: date
    org_ref: str
    gp_refs: list[str]
    status: bytearray = field(default_factory=bytearray)
    members: dict[str, list[tuple[int, str, str | None, bool]]] = field(
        default_factory=lambda: {r: [] for r in REGISTERS}
    )
    register_patients: list[int] = field(default_factory=list)
    condition_count: int = 0


def _below(rng: random.Random, n: int) -> int:
    """A random int in [0, n): cheaper than randrange on the per-patient path."""
    return int(rng.random() * n)


def _pick(rng: random.Random, seq: Sequence[T]) -> T:
    """A random element: cheaper than choice on the per-patient path."""
    return seq[int(rng.random() * len(seq))]


def _patient_id(index: int) -> str:
    return f"pat-{index + 1:07d}"


def _organization(ods_code: str, rng: random.Random) -> JSON:
    district, town = data.DISTRICTS[rng.randrange(len(data.DISTRICTS))]
    return {
        "resourceType": "Organization",
        "id": f"org-{ods_code}",
        "identifier": [{"system": ODS_ORGANISATION, "value": ods_code}],
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "https://fhir.nhs.uk/CodeSystem/organisation-role",
                        "code": "76",
                        "display": "GP PRACTICE",
                    }
                ]
            }
        ],
        "name": f"{rng.choice(data.PRACTICE_NAMES)} Medical Practice",
        "telecom": [{"system": "phone", "value": "0191 498 0000", "use": "work"}],
        "address": [{"line": ["1 Front Street"], "city": town, "postalCode": f"{district} 1AA"}],
    }


def _practitioner(index: int, ods_code: str, rng: random.Random) -> JSON:
    female = rng.random() < 0.55
    return {
        "resourceType": "Practitioner",
        "id": f"gp-{index + 1:03d}",
        "identifier": [
            {"system": "https://fhir.hl7.org.uk/Id/gmc-number", "value": f"{7000000 + index}"}
        ],
        "active": True,
        "name": [
            {
                "family": rng.choice(data.FAMILY),
                "given": [rng.choice(data.FEMALE_GIVEN if female else data.MALE_GIVEN)],
                "prefix": ["Dr"],
            }
        ],
    }


def _age(rng: random.Random) -> int:
    roll = rng.random() * 100
    for low, high, weight in data.AGE_BANDS:
        if roll < weight:
            return low + _below(rng, high - low + 1)
        roll -= weight
    return 85 + _below(rng, 15)


def _postcode(rng: random.Random) -> tuple[str, str]:
    district, town = data.DISTRICTS[_below(rng, len(data.DISTRICTS))]
    letters = data.INWARD_LETTERS
    inward = f"{_below(rng, 10)}{letters[_below(rng, 20)]}{letters[_below(rng, 20)]}"
    return f"{district} {inward}", town


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"07700 900{_below(rng, 1000):03d}"
    if rng.random() < 0.5:
        return f"0191 498 0{_below(rng, 1000):03d}"
    return f"01632 960{_below(rng, 1000):03d}"


def _patient(index: int, nhs: str, p: _Practice) -> tuple[JSON, date, int]:
    rng = p.rng
    age = _age(rng)
    born = p.today - timedelta(days=age * 365 + _below(rng, 365))
    roll = rng.random()
    gender = "female" if roll < 0.508 else "male" if roll < 0.998 else "unknown"
    given = _pick(rng, data.FEMALE_GIVEN if gender == "female" else data.MALE_GIVEN)
    postcode, town = _postcode(rng)
    resource: JSON = {
        "resourceType": "Patient",
        "id": _patient_id(index),
        "identifier": [{"system": NHS_NUMBER, "value": nhs}],
        "active": True,
        "name": [{"use": "official", "family": _pick(rng, data.FAMILY), "given": [given]}],
        "telecom": [{"system": "phone", "value": _phone(rng), "use": "home"}],
        "gender": gender,
        "birthDate": born.isoformat(),
        "address": [
            {
                "use": "home",
                "line": [f"{1 + _below(rng, 180)} {_pick(rng, data.STREETS)}"],
                "city": town,
                "postalCode": postcode,
                "country": "GB",
            }
        ],
        "generalPractitioner": [{"reference": p.org_ref}],
        "managingOrganization": {"reference": p.org_ref},
    }
    status = _ALIVE
    death_risk = 0.002 if age < 65 else 0.02 if age < 85 else 0.08
    if rng.random() < death_risk:
        status = _DECEASED
        died = p.today - timedelta(days=1 + _below(rng, 364))
        resource["deceasedDateTime"] = f"{died.isoformat()}T{_below(rng, 24):02d}:00:00Z"
    elif rng.random() < 0.015:
        status = _LEFT
        resource["active"] = False
    return resource, born, status


def _condition(
    p: _Practice,
    patient_id: str,
    born: date,
    code: str,
    *,
    resolved: bool = False,
    inactive: bool = False,
    recent: bool = False,
) -> JSON:
    rng = p.rng
    span = (p.today - born).days
    onset = p.today - timedelta(days=rng.randrange(1, max(2, min(730, span) if recent else span)))
    recorded = min(p.today, onset + timedelta(days=rng.randrange(0, 60)))
    p.condition_count += 1
    status = "resolved" if resolved else "inactive" if inactive else "active"
    resource: JSON = {
        "resourceType": "Condition",
        "id": f"cond-{p.condition_count:08d}",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
        "category": [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}],
        "code": {
            "coding": [{"system": SNOMED, "code": code, "display": data.SNOMED_DISPLAY[code]}]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "onsetDateTime": onset.isoformat(),
        "recordedDate": recorded.isoformat(),
    }
    if resolved:
        ended = recorded + timedelta(days=rng.randrange(1, max(2, (p.today - recorded).days + 1)))
        resource["abatementDateTime"] = min(ended, p.today).isoformat()
    return resource


def _conditions(p: _Practice, index: int, born: date, status: int) -> list[JSON]:
    """A patient's Conditions, recording register memberships as a side effect."""
    rng = p.rng
    pid = _patient_id(index)
    age = (p.today - born).days // 365
    out: list[JSON] = []
    joined: dict[str, JSON] = {}
    if age >= 35 and rng.random() < (0.045 if age >= 60 else 0.012):
        code = rng.choices(("13645005", "185086009", "87433001"), (6, 2, 2))[0]
        out.append(_condition(p, pid, born, code, resolved=rng.random() < 0.04))
        joined["copd"] = out[-1]
    if rng.random() < 0.065:
        code = "233678006" if age < 16 and rng.random() < 0.5 else "195967001"
        out.append(_condition(p, pid, born, code, resolved=rng.random() < 0.12))
        joined["asthma"] = out[-1]
    falls_rate = 0.002 if age < 50 else 0.02 if age < 65 else 0.12 if age < 80 else 0.22
    if rng.random() < falls_rate:
        code = rng.choices(("161898004", "1912002", "129839007"), (5, 3, 2))[0]
        out.append(_condition(p, pid, born, code, inactive=rng.random() < 0.1, recent=True))
        joined["falls"] = out[-1]
    if age >= 65 and rng.random() < (0.2 if age < 80 else 0.45):
        code = rng.choices(
            ("248279007", "925791000000100", "925831000000107", "925861000000102"), (2, 5, 3, 1)
        )[0]
        out.append(_condition(p, pid, born, code, recent=True))
        joined["high_risk"] = out[-1]
    if age >= 65 and rng.random() < (0.01 if age < 75 else 0.06):
        out.append(_condition(p, pid, born, "160689007", recent=True))
        joined.setdefault("high_risk", out[-1])
    if age >= 40 and rng.random() < 0.25:
        out.append(_condition(p, pid, born, "38341003", resolved=rng.random() < 0.03))
    if age >= 40 and rng.random() < 0.08:
        out.append(_condition(p, pid, born, "44054006"))
    for register, cond in joined.items():
        ended = cond.get("abatementDateTime")
        live = cond["clinicalStatus"]["coding"][0]["code"] == "active"
        p.members[register].append((index, cond["recordedDate"], ended, not live or status != 0))
    if status == _ALIVE and any(
        c["clinicalStatus"]["coding"][0]["code"] == "active" for c in joined.values()
    ):
        p.register_patients.append(index)
    return out


def _appointment(p: _Practice, number: int, index: int, day_offset: int, slot: int) -> JSON:
    rng = p.rng
    day = p.today + timedelta(days=day_offset)
    local = datetime(day.year, day.month, day.day, 8, 0, tzinfo=LONDON)
    start = local + timedelta(minutes=10 * slot)
    if day_offset < 0:
        status = rng.choices(("fulfilled", "noshow", "cancelled"), (85, 7, 8))[0]
    elif day_offset == 0:
        status = rng.choices(
            ("booked", "arrived", "fulfilled", "cancelled", "noshow"), (40, 20, 30, 5, 5)
        )[0]
    else:
        status = rng.choices(("booked", "cancelled"), (92, 8))[0]
    created = min(day - timedelta(days=rng.randrange(1, 21)), p.today)
    return {
        "resourceType": "Appointment",
        "id": f"appt-{number:08d}",
        "status": status,
        "appointmentType": {
            "coding": [{"system": APPOINTMENT_TYPE, "code": rng.choice(("ROUTINE", "FOLLOWUP"))}]
        },
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=10)).isoformat(),
        "minutesDuration": 10,
        "created": created.isoformat(),
        "participant": [
            {"actor": {"reference": f"Patient/{_patient_id(index)}"}, "status": "accepted"},
            {"actor": {"reference": rng.choice(p.gp_refs)}, "status": "accepted"},
        ],
    }


def _appointments(p: _Practice, patients: int) -> Iterator[JSON]:
    """About 1.4% of patients a weekday, half of them on a register; today has at
    least three register patients so small test practices always have some."""
    rng = p.rng
    number = 0
    for offset in range(-7, 8):
        weekday = (p.today + timedelta(days=offset)).weekday()
        per_day = patients * (0.014 if weekday < 5 else 0.002)
        count = int(per_day) + (1 if rng.random() < per_day % 1 else 0)
        if offset == 0:
            count = max(count, 6)
        from_register = 0
        for slot in range(count):
            wanted = offset == 0 and from_register < 3
            if p.register_patients and (wanted or rng.random() < 0.5):
                index = rng.choice(p.register_patients)
                from_register += 1
            else:
                index = rng.randrange(patients)
                for _ in range(20):
                    if p.status[index] == _ALIVE:
                        break
                    index = rng.randrange(patients)
                else:
                    continue
            number += 1
            yield _appointment(p, number, index, offset, slot % 60)


def _group(p: _Practice, register: str, ods_code: str) -> JSON:
    members = []
    for index, start, end, inactive in p.members[register]:
        member: JSON = {"entity": {"reference": f"Patient/{_patient_id(index)}"}}
        member["period"] = {"start": start, **({"end": end} if end else {})}
        member["inactive"] = inactive
        members.append(member)
    return {
        "resourceType": "Group",
        "id": f"register-{register.replace('_', '-')}",
        "identifier": [{"system": f"{REGISTER_SYSTEM}/{ods_code}", "value": register}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": REGISTER_NAMES[register],
        "quantity": sum(1 for m in members if not m["inactive"]),
        "managingEntity": {"reference": p.org_ref},
        "member": members,
    }


def generate_practice(
    patients: int, seed: int, today: date, ods_code: str = "A12345"
) -> Iterator[JSON]:
    """Stream the practice's resources as FHIR JSON dicts; the same seed gives the same data."""
    if patients < 0:
        raise ValueError("patients must be >= 0")
    rng = random.Random(seed)
    org = _organization(ods_code, rng)
    yield org
    gps = [_practitioner(i, ods_code, rng) for i in range(max(2, min(60, patients // 1500)))]
    yield from gps
    p = _Practice(rng, today, f"Organization/{org['id']}", [f"Practitioner/{g['id']}" for g in gps])
    p.status = bytearray(patients)
    numbers = nhs_numbers()
    for index in range(patients):
        patient, born, status = _patient(index, next(numbers), p)
        p.status[index] = status
        yield patient
        yield from _conditions(p, index, born, status)
    if patients:
        yield from _appointments(p, patients)
    for register in REGISTERS:
        yield _group(p, register, ods_code)


def seed_store(
    store: MockStore, patients: int, seed: int, today: date, ods_code: str = "A12345"
) -> int:
    """Load a generated practice into a MockStore; return how many resources were stored."""
    return store.load(generate_practice(patients, seed, today, ods_code))


def default_today() -> date:
    """Today in UTC, for callers without an injected clock."""
    return datetime.now(UTC).date()
