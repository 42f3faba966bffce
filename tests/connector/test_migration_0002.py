"""Migration 0002 builds the sync tables exactly as the models say, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel, select

from healthy_homes.store.db import Database, alembic_config
from healthy_homes.store.models import SyncState

OURS = {"sync_state", "register_condition", "patient_status", "appointment_watch"}
PG_ADMIN = os.environ.get("HEALTHY_HOMES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server reachable: {exc}")
    name = f"hh_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _ours(diff: list) -> list:
    """Differences that touch our tables (others' tables may be mid-change in the tree)."""
    return [d for d in diff if any(f"'{t}'" in repr(d) for t in OURS)]


def _check(db: Database) -> None:
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= OURS
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert _ours(diff) == []
    when = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
    with db.session() as session:
        session.add(
            SyncState(
                practice_ods="A12345",
                stream="copd",
                source="condition",
                watermark=when,
                updated_at=when,
            )
        )
    with db.session() as session:
        [row] = session.exec(select(SyncState)).all()
        assert row.watermark == when  # microseconds survive: watermarks are exact
    command.downgrade(alembic_config(db.engine), "0001")
    assert not (OURS & set(inspect(db.engine).get_table_names()))
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= OURS


def test_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    _check(db)
    db.dispose()


@pytest.mark.postgres
def test_postgres(pg_url: str) -> None:
    db = Database(pg_url)
    _check(db)
    db.dispose()
