"""Migration 0009: the access tables as the models say; housing officers move across and back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from healthy_homes.accounts import DatabaseAccounts
from healthy_homes.accounts.passwords import hash_password
from healthy_homes.clock import FixedClock
from healthy_homes.store.db import Database, alembic_config
from tests.store.conftest import postgres_url  # noqa: F401 - the shared PostgreSQL fixture
from tests.store.migration_checks import drift, table_names

OURS = {"user_account", "user_session", "sign_in_failure"}
WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _check(db: Database) -> None:
    config = alembic_config(db.engine)
    command.upgrade(config, "0008")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO housing_team (id, name, token_hash, overdue_days, created_at)"
                " VALUES ('north', 'North', 'x', 10, :when)"
            ),
            {"when": WHEN},
        )
        conn.execute(
            sa.text(
                "INSERT INTO housing_user (id, team_id, username, display_name, password_hash,"
                " created_at) VALUES ('u1', 'north', 'olive', 'Olive North', :hash, :when)"
            ),
            {"hash": hash_password("olive's long password", n=2**14), "when": WHEN},
        )
    db.upgrade()
    tables = table_names(db)
    assert tables >= OURS and not {"housing_user", "housing_session"} & tables
    assert drift(db, OURS) == []
    # The officer signs in as before, now as a housing officer of their team.
    accounts = DatabaseAccounts(db, FixedClock(WHEN))
    token = accounts.sign_in("olive", "olive's long password", "10.0.0.1")
    assert token is not None
    principal = accounts.principal(token)
    assert principal is not None
    assert (principal.role.value, principal.organisation) == ("housing_officer", "north")

    command.downgrade(config, "0008")
    tables = table_names(db)
    assert not OURS & tables and "housing_user" in tables
    with db.engine.connect() as conn:
        back = conn.execute(sa.text("SELECT username, team_id FROM housing_user")).all()
    assert [tuple(r) for r in back] == [("olive", "north")]
    db.upgrade()


def test_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    _check(db)
    db.dispose()


@pytest.mark.postgres
def test_postgres(postgres_url: str) -> None:  # noqa: F811 - the imported fixture
    db = Database(postgres_url)
    _check(db)
    db.dispose()
