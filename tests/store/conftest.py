"""A throwaway PostgreSQL database per test, when a server is reachable; a migrated store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthy_homes.store.db import Database
from tests.store.templates import create_migrated_postgres, migrated_sqlite

PG_ADMIN = os.environ.get("HEALTHY_HOMES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def _throwaway(create: Callable[[psycopg.Connection[Any], str], object]) -> Iterator[str]:
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server reachable at {PG_ADMIN}: {exc}")
    name = f"hh_test_{uuid.uuid4().hex[:12]}"
    create(admin, name)
    # A throwaway database need not wait for its WAL to reach the disk at each commit: a
    # commit is still visible to every other connection at once and survives any client
    # being killed; only a crash of the server itself could lose the last few.
    admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _empty(admin: psycopg.Connection[Any], name: str) -> None:
    admin.execute(f'CREATE DATABASE "{name}"')


def _at_head(admin: psycopg.Connection[Any], name: str) -> None:
    create_migrated_postgres(admin, PG_ADMIN, name)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty database; dropped afterwards."""
    with _throwaway(_empty) as url:
        yield url


@pytest.fixture
def migrated_postgres_url() -> Iterator[str]:
    """URL of a fresh database at the schema head; dropped afterwards."""
    with _throwaway(_at_head) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The connector's database migrated to head, on SQLite and on PostgreSQL in turn.

    Import it into a package's conftest to use it there.
    """
    if request.param == "sqlite":
        db = migrated_sqlite(tmp_path / "hh.db")
        yield db
        db.dispose()
        return
    with _throwaway(_at_head) as url:
        db = Database(url)
        yield db
        db.dispose()
