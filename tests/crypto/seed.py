"""One synthetic patient's rows in every table with an encrypted column."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import SQLModel

from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentRecord,
    FlagEvent,
    FlagRecord,
    HousingActivity,
    HousingReferral,
    HousingTeam,
    Referral,
)

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _check_digit(body: str) -> int:
    return (11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11) % 11


def nhs(n: int) -> str:
    """The ``n``-th 999-range NHS number with a valid check digit."""
    found, candidate = -1, 0
    while True:
        body = f"999{candidate:06d}"
        candidate += 1
        if _check_digit(body) != 10:
            found += 1
            if found == n:
                return body + str(_check_digit(body))


def dataset(n: int) -> dict[str, object]:
    """The minimum dataset of synthetic patient ``n``."""
    return {
        "nhs_number": nhs(n),
        "given_name": f"Givenname{n}",
        "family_name": f"Familyname{n}",
        "address_lines": [f"{n} Synthetic Row"],
        "postcode": "NE25 9ZZ",
        "phone": f"07700 900{n:03d}",
    }


def seed(db: Database, patients: int) -> None:
    """Rows for ``patients`` patients, each identifiable column set."""
    with db.session() as session:
        session.add(HousingTeam(id="team-a", name="Team A", token_hash="0" * 64, created_at=WHEN))
        # No ORM relationships here, so parents are flushed before their children.
        for rows in _rows(patients):
            session.add_all(rows)
            session.flush()


def _rows(patients: int) -> list[list[SQLModel]]:
    flags: list[SQLModel] = []
    children: list[SQLModel] = []
    referrals: list[SQLModel] = []
    activities: list[SQLModel] = []
    for n in range(patients):
        flags.append(
            FlagRecord(
                id=f"f{n}",
                practice_ods="A12345",
                patient_id=f"p{n}",
                rule_set_version="t",
                created_at=WHEN,
                updated_at=WHEN,
                outcome_reason=f"Familyname{n} asked for a call",
            )
        )
        children.append(
            FlagEvent(
                id=f"e{n}",
                flag_id=f"f{n}",
                practice_ods="A12345",
                kind="x",
                at=WHEN,
                reason=f"Familyname{n} not today",
            )
        )
        children.append(
            ConsentRecord(
                id=f"c{n}",
                practice_ods="A12345",
                patient_id=f"p{n}",
                flag_id=f"f{n}",
                decision="given",
                recorded_by="Dr Test",
                wording_version="v1",
                recorded_at=WHEN,
                reason=f"Familyname{n} agreed",
                withdrawal_reason=None,
            )
        )
        referrals.append(
            Referral(
                id=f"r{n}",
                practice_ods="A12345",
                patient_id=f"p{n}",
                consent_id=f"c{n}",
                flag_id=f"f{n}",
                housing_service_id="hs",
                dataset=dataset(n),
                created_at=WHEN,
                cancel_reason=f"Familyname{n} moved" if n % 2 else None,
            )
        )
        referrals.append(
            HousingReferral(
                id=f"h{n}",
                team_id="team-a",
                referral_identifier=f"r{n}",
                dataset=dataset(n),
                consent={"given_by": f"Familyname{n}"},
                received_at=WHEN,
                updated_at=WHEN,
                status_reason=f"Phoned {nhs(n)}",
            )
        )
        activities.append(
            HousingActivity(
                id=f"a{n}",
                referral_id=f"h{n}",
                kind="note",
                by="Officer",
                at=WHEN,
                text=f"Visited {n} Synthetic Row",
            )
        )
    return [flags, children, referrals, activities]
