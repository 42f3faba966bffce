"""Delivery tests: a migrated SQLite store on tmpfs when there is one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.store.db import Database
from tests.store.templates import migrated_sqlite


@pytest.fixture
def fast_dir() -> Iterator[Path]:
    """A temporary directory in memory (/dev/shm) if the machine has it."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base, prefix="hh-delivery-") as path:
        yield Path(path)


@pytest.fixture
def db(fast_dir: Path) -> Iterator[Database]:
    """A migrated database."""
    database = migrated_sqlite(fast_dir / "delivery.db")
    yield database
    database.dispose()


from tests.store.conftest import postgres_url  # noqa: E402, F401  (the same throwaway database)
