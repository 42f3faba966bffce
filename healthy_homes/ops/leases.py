"""Practice jobs guarded across connector processes: one practice on one worker at a time.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a stable 64-bit
key from the job name, held on a connection of its own for the length of the run. A
worker that dies loses its connection, and the server frees the lock at once.

SQLite: a row in ``practice_lease`` with an expiry, taken by one atomic upsert that only
succeeds when the row is free, expired or already ours, and renewed while the run
lasts. A worker that dies stops renewing, and the practice is free again once the
lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, delete, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool
from sqlmodel import col

from healthy_homes.clock import Clock
from healthy_homes.store.db import Database
from healthy_homes.store.ops_models import PracticeLease

log = logging.getLogger(__name__)


def job_name(kind: str, ods: str) -> str:
    """The name a practice job is guarded under, e.g. ``sync:A12345``."""
    return f"{kind}:{ods}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (the same in every process)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Held(Protocol):
    """A guard this process holds; released exactly once."""

    async def release(self) -> None:
        """Give the practice back."""


class PracticeGuard(Protocol):
    """Takes a practice job for this process, or says another process has it."""

    async def try_acquire(self, name: str) -> Held | None:
        """The guard if it was free (or expired), else None; never waits."""

    def close(self) -> None:
        """Free what the guard keeps open."""


@dataclass
class _AdvisoryHold:
    connection: Connection
    key: int

    async def release(self) -> None:
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        try:
            self.connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            self.connection.close()  # closing alone would free it too


class AdvisoryLocks:
    """PostgreSQL advisory locks, each on its own autocommit connection (no pool)."""

    def __init__(self, db: Database) -> None:
        # Not the shared pool: a lock lives as long as its connection, and a pooled
        # connection handed back with a lock still on it would hold the practice forever.
        self.engine: Engine = create_engine(db.engine.url, poolclass=NullPool)

    async def try_acquire(self, name: str) -> Held | None:
        """Try the lock once; the connection stays open while it is held."""
        return await asyncio.to_thread(self._try, advisory_key(name))

    def _try(self, key: int) -> Held | None:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            return None
        return _AdvisoryHold(connection, key)

    def close(self) -> None:
        """Drop the lock engine."""
        self.engine.dispose()


@dataclass
class _LeaseHold:
    table: LeaseTable
    name: str
    renewer: asyncio.Task[None] | None = field(default=None)

    async def release(self) -> None:
        if self.renewer is not None:
            self.renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.renewer
        await asyncio.to_thread(self.table.give_back, self.name)


class LeaseTable:
    """Leases in the ``practice_lease`` table, renewed every third of their length."""

    def __init__(self, db: Database, owner: str, lease_seconds: float, clock: Clock) -> None:
        self.db = db
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock

    async def try_acquire(self, name: str) -> Held | None:
        """Take the lease if free, expired or ours; renew it in the background while held."""
        if not await asyncio.to_thread(self.take, name):
            return None
        hold = _LeaseHold(self, name)
        hold.renewer = asyncio.create_task(self._renew_every(name))
        return hold

    def take(self, name: str) -> bool:
        """One atomic upsert: True if this owner now holds ``name``."""
        now = self.clock.now()
        values = {
            "name": name,
            "owner": self.owner,
            "acquired_at": now,
            "expires_at": now + self.lease,
        }
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(PracticeLease).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[col(PracticeLease.name)],
            set_={"owner": self.owner, "acquired_at": now, "expires_at": now + self.lease},
            where=(col(PracticeLease.expires_at) <= now) | (col(PracticeLease.owner) == self.owner),
        ).returning(col(PracticeLease.owner))
        with self.db.session() as session:
            return session.execute(statement).first() is not None

    def renew(self, name: str) -> bool:
        """Push the expiry on; False if the lease is no longer ours."""
        statement = (
            update(PracticeLease)
            .where(col(PracticeLease.name) == name, col(PracticeLease.owner) == self.owner)
            .values(expires_at=self.clock.now() + self.lease)
            .returning(col(PracticeLease.name))
        )
        with self.db.session() as session:
            return session.execute(statement).first() is not None

    def give_back(self, name: str) -> None:
        """Delete the lease if it is still ours."""
        statement = delete(PracticeLease).where(
            col(PracticeLease.name) == name, col(PracticeLease.owner) == self.owner
        )
        with self.db.session() as session:
            session.execute(statement)

    async def _renew_every(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                still = await asyncio.to_thread(self.renew, name)
            except Exception as exc:  # the database may be back by the next renewal
                log.warning("lease renewal failed (%s)", type(exc).__name__)
                continue
            if not still:
                log.warning("lease %s was taken over by another worker", name)
                return

    def close(self) -> None:
        """Nothing to free: leases use the store's pool."""


def practice_guard(db: Database, owner: str, lease_seconds: float, clock: Clock) -> PracticeGuard:
    """Advisory locks on PostgreSQL, the lease table on SQLite."""
    if db.engine.dialect.name == "postgresql":
        return AdvisoryLocks(db)
    return LeaseTable(db, owner, lease_seconds, clock)
