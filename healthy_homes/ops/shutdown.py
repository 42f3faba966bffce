"""Graceful shutdown: what a stopping worker still holds goes back to the outbox at once."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from healthy_homes.clock import Clock
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, OutboxState


def release_leases(db: Database, owner: str, clock: Clock) -> int:
    """Make ``owner``'s in-flight entries due again now; returns how many.

    Used once its sends were cut short: another worker takes them without waiting for
    the leases to expire. A send that did reach the receiver is sent again under the
    same referral id and de-duplicated there.
    """
    now = clock.now()
    statement = (
        update(OutboxEntry)
        .where(
            col(OutboxEntry.state) == OutboxState.IN_FLIGHT, col(OutboxEntry.lease_owner) == owner
        )
        .values(
            state=OutboxState.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=now,
            updated_at=now,
        )
        .returning(col(OutboxEntry.id))
    )
    with db.session() as session:
        return len(session.execute(statement).all())
