"""Migration 0012: the housing team's reason and outcome on a referral, encrypted, and back down."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentRecord, Referral
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)
from tests.store.migration_checks import column_names, drift, round_trip

COLUMNS = {"status_reason", "outcome"}
WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def backend(migrated_db: Database) -> Database:  # noqa: F811  (the imported fixture)
    return migrated_db


def _referral(db: Database) -> None:
    with db.session() as session:
        session.add(
            ConsentRecord(
                id="c1",
                practice_ods="A12345",
                patient_id="p1",
                decision="given",
                recorded_by="Dr Test",
                wording_version="2026-1",
                recorded_at=WHEN,
            )
        )
        session.flush()
        session.add(
            Referral(
                id="r1",
                practice_ods="A12345",
                patient_id="p1",
                consent_id="c1",
                housing_service_id="north",
                dataset={"nhs_number": "9990000018"},
                created_at=WHEN,
                status_reason="No capacity",
                outcome="Heating repaired",
            )
        )


def test_columns_hold_ciphertext_and_downgrade_drops_them(backend: Database) -> None:
    assert column_names(backend, "referral") >= COLUMNS
    _referral(backend)
    with backend.session() as session:
        row = session.get(Referral, "r1")
    assert row is not None and (row.status_reason, row.outcome) == (
        "No capacity",
        "Heating repaired",
    )
    with backend.engine.connect() as conn:
        raw = conn.execute(text("SELECT status_reason, outcome FROM referral")).one()
    for stored in raw:
        as_text = stored if isinstance(stored, str) else bytes(stored).decode("latin-1")
        assert "No capacity" not in as_text and "Heating" not in as_text
    round_trip(backend, "0011", columns={"referral": COLUMNS})


def test_the_referral_table_matches_the_models(backend: Database) -> None:
    def touching(change: object) -> bool:
        return "referral" in repr(change) and any(c in repr(change) for c in COLUMNS)

    assert drift(backend, touching) == []
