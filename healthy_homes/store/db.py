"""Engine, sessions and in-place schema upgrades (Alembic)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from healthy_homes.config.models import Settings
from healthy_homes.crypto import KeyRing, keyring_from_config, set_keyring
from healthy_homes.errors import StorageError

# Registers the listeners that keep the NHS-number lookup hashes current on every write.
from healthy_homes.store import lookups as _lookups  # noqa: F401

MIGRATIONS = Path(__file__).with_name("migrations")


class _NoRows(logging.Filter):
    """Drop SQLAlchemy's DEBUG records of result rows: they hold decrypted patient data.

    Rows are logged after the column types have decrypted them, so with ``-vv`` (root at
    DEBUG, which SQLAlchemy's loggers inherit) every referral would be written out in
    plaintext. Statements stay loggable; their parameters are hidden by the engine.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Row "))


logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NoRows())


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys, PostgreSQL a pool."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL fsyncs the log at checkpoints instead of at every commit.
            # A commit still survives the process crashing or being killed, which is what
            # the referral outbox (pending rows, ids stable across retries) and the sync
            # watermarks rely on. Only a power cut or OS crash can lose the last few
            # commits, and never corrupts the file: a lost "sent" is sent again under the
            # same id, a lost watermark makes the next sync re-read (idempotently).
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at our packaged migrations and this engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` in place."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"database upgrade failed: {type(exc).__name__}") from exc


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class Database:
    """One database: an engine plus a session factory."""

    def __init__(self, url: str, *, keyring: KeyRing | None = None) -> None:
        if keyring is not None:
            set_keyring(keyring)
        self.url = url
        self.engine = make_engine(url)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database, with the configured keys installed for its columns.

        Keys are loaded before anything is read or written: a deployment without keys
        fails here, at start-up, rather than at its first patient.
        """
        return cls(settings.storage.url, keyring=keyring_from_config(settings.security))

    def upgrade(self) -> None:
        """Run pending migrations."""
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except Exception:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
