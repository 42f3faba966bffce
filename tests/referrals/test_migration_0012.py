"""Migration 0012: the housing team's reason and outcome on a referral, encrypted, and back down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from healthy_homes.store.db import Database, alembic_config, upgrade
from healthy_homes.store.models import ConsentRecord, Referral
from tests.store.conftest import postgres_url  # noqa: F401  (the same throwaway database)

COLUMNS = {"status_reason", "outcome"}
WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'hh.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("referral")}


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
    assert _columns(backend) >= COLUMNS
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
    command.downgrade(alembic_config(backend.engine), "0011")
    assert not COLUMNS & _columns(backend)
    upgrade(backend.engine)
    assert _columns(backend) >= COLUMNS


def test_the_referral_table_matches_the_models(backend: Database) -> None:
    with backend.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    touching = [d for d in diff if "referral" in repr(d) and any(c in repr(d) for c in COLUMNS)]
    assert touching == []
