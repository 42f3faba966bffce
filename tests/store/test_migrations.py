"""The schema is created and upgraded in place by Alembic, on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect

from healthy_homes.cli import main
from healthy_homes.store.db import Database, current_revision
from healthy_homes.store.models import FlagRecord

TABLES = {"register_membership", "flag", "consent", "referral", "alembic_version"}


def roundtrip(db: Database) -> None:
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    with db.session() as session:
        session.add(
            FlagRecord(
                id="f1",
                practice_ods="A12345",
                patient_id="p1",
                registers=["copd"],
                reasons=["On COPD register"],
                rule_set_version="t",
                created_at=when,
                updated_at=when,
            )
        )
    with db.session() as session:
        row = session.get(FlagRecord, "f1")
        assert row is not None
        assert row.created_at == when and row.created_at.tzinfo is not None
        assert row.registers == ["copd"]
    db.upgrade()  # idempotent: upgrading an up-to-date database changes nothing
    assert current_revision(db.engine) is not None


def test_sqlite_upgrade_from_empty(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    assert current_revision(db.engine) is None
    roundtrip(db)
    db.dispose()


@pytest.mark.postgres
def test_postgres_upgrade_from_empty(postgres_url: str) -> None:
    db = Database(postgres_url)
    roundtrip(db)
    db.dispose()


def test_db_upgrade_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHY_HOMES__STORAGE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    assert "empty ->" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == current_revision(
        Database(f"sqlite:///{tmp_path / 'cli.db'}").engine
    )
