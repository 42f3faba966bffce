"""Migration 0013: who made each referral (a user account), with no guessed backfill."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral
from tests.referrals.test_migration_0012 import _referral
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401  (shared fixtures)
from tests.store.migration_checks import drift, round_trip

COLUMN = "referred_by_user"


@pytest.fixture
def backend(migrated_db: Database) -> Database:  # noqa: F811  (the imported fixture)
    return migrated_db


def _made_by(db: Database, user_id: str) -> None:
    _referral(db)
    with db.session() as session:
        row = session.get(Referral, "r1")
        assert row is not None
        row.referred_by_user = user_id
        session.add(row)


def _stored(db: Database) -> list[tuple[str, str | None]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, {COLUMN} FROM referral")).all()
    return [(row[0], row[1]) for row in rows]


def test_down_and_up_keeps_referrals_and_backfills_nobody(backend: Database) -> None:
    _made_by(backend, "6f0c1b9e-0000-4000-8000-000000000001")
    assert _stored(backend) == [("r1", "6f0c1b9e-0000-4000-8000-000000000001")]
    indexes = {i["name"] for i in inspect(backend.engine).get_indexes("referral")}
    assert "ix_referral_referred_by_user" in indexes
    # Down, the maker is gone; up again, the referral is still there and nobody's: a
    # name on its consent is not enough to say whose it is.
    round_trip(backend, "0012", columns={"referral": {COLUMN}})
    assert _stored(backend) == [("r1", None)]


def test_the_referral_table_matches_the_models(backend: Database) -> None:
    def touching(change: object) -> bool:
        return "referral" in repr(change) and COLUMN in repr(change)

    assert drift(backend, touching) == []
