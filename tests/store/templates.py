"""Databases at the schema head, and fixtures' standing rows, made once per test run and copied.

Migrating takes a tenth of a second or more per database, and a fixture's users cost a
scrypt hash each; hundreds of tests pay that for the same result. The first request
builds a template (a SQLite file; a PostgreSQL database) and every test gets a copy of
its own: a file copy, or ``CREATE DATABASE ... TEMPLATE``. A copy is the same schema and
rows byte for byte, so nothing a test sees changes. Running the migrations themselves,
from an empty database, is what the ``test_migration*`` modules do.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg

from healthy_homes.crypto import set_keyring
from healthy_homes.store.db import Database
from tests.conftest import test_keyring

T = TypeVar("T")

_folder: Path | None = None
_sqlite: dict[Callable[[Database], Any], tuple[Path, Any]] = {}
_postgres: str | None = None


def _templates() -> Path:
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="hh-templates-"))
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def _nothing(_: Database) -> None:
    return None


def sqlite_copy(target: Path, prepare: Callable[[Database], T]) -> tuple[Database, T]:
    """A database at ``target``: a copy of one migrated and given ``prepare``'s rows once.

    ``prepare`` names the template (a module-level function, so the same one each time);
    what it returns (tokens, say) is returned with every copy.
    """
    if prepare not in _sqlite:
        set_keyring(test_keyring())  # module-scoped fixtures start before the per-test keyring
        path = _templates() / f"template-{len(_sqlite)}.db"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        made = prepare(db)
        db.dispose()  # the last connection closing checkpoints the WAL into the file
        assert not path.with_name(path.name + "-wal").exists()
        _sqlite[prepare] = (path, made)
    path, made = _sqlite[prepare]
    shutil.copyfile(path, target)
    return Database(f"sqlite:///{target}"), cast(T, made)


def migrated_sqlite(target: Path) -> Database:
    """A SQLite database at ``target``, at the schema head."""
    return sqlite_copy(target, _nothing)[0]


def create_migrated_postgres(admin: psycopg.Connection[Any], admin_url: str, name: str) -> None:
    """Create database ``name`` at the schema head (a copy of a template migrated once)."""
    global _postgres
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    if _postgres is None:
        template = f"hh_template_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{template}"')
        atexit.register(_drop, admin_url, template)
        db = Database(f"{base}/{template}")
        db.upgrade()
        db.dispose()  # a template must have no connections when it is copied
        _postgres = template
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_postgres}"')


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
