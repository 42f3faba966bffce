"""Register sync writes the same state into PostgreSQL as into SQLite (bulk upserts on both)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector.run import run_once
from healthy_homes.store.db import Database
from tests.connector.helpers import (
    NOW,
    condition,
    practice,
    practice_server,
    register_state,
    rest,
    settings,
)

PG_ADMIN = os.environ.get("HEALTHY_HOMES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

pytestmark = pytest.mark.e2e


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


@pytest.mark.postgres
def test_postgres_and_sqlite_end_in_the_same_state(pg_url: str, tmp_path: Path) -> None:
    server = practice_server(patients=300, seed=11)
    stores = [Database(pg_url), Database(f"sqlite:///{tmp_path / 'hh.db'}")]
    try:
        for db in stores:
            db.upgrade()

        def sync_all(hours: float) -> None:
            for db in stores:
                config = settings(db, practice(server), page_size=40)
                clock = FixedClock(NOW + timedelta(hours=hours))
                report = asyncio.run(run_once(config, db, clock))
                assert [r.error for r in report.practices] == [None]

        sync_all(0)
        first = [register_state(db) for db in stores]
        assert first[0] == first[1] and first[0]["members"]
        with rest(server) as http:
            patient = sorted(p for _, p, *_ in first[0]["members"])[0]
            http.post("Condition", json=condition(patient, "185086009")).raise_for_status()
        sync_all(1)
        second = [register_state(db) for db in stores]
        assert second[0] == second[1] != first[0]
    finally:
        server.stop()
        for db in stores:
            db.dispose()
