"""Reading what reached the mock housing server, and the outbox, for assertions."""

from __future__ import annotations

from collections import Counter

from sqlmodel import func, select

from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.store.db import Database
from healthy_homes.store.models import Alert, OutboxEntry


def received(server: RunningMockServer) -> Counter[str]:
    """How many ServiceRequests the receiver holds per referral identifier."""
    counts: Counter[str] = Counter()
    store = server.store
    with store.lock:
        versions = [store.record(seq) for seq in store.type_seqs("ServiceRequest")]
    for version in versions:
        if version.next_seq is not None or version.deleted:
            continue  # an older version, or gone
        for identifier in version.resource().get("identifier") or []:
            if identifier.get("system") == HH_REFERRAL_ID:
                counts[str(identifier.get("value"))] += 1
    return counts


def states(db: Database) -> Counter[str]:
    """Outbox entries per state."""
    with db.session() as session:
        rows = session.exec(
            select(OutboxEntry.state, func.count()).group_by(OutboxEntry.state)
        ).all()
    return Counter({str(state): int(n) for state, n in rows})


def alerts(db: Database) -> list[Alert]:
    """Every alert raised."""
    with db.session() as session:
        return list(session.exec(select(Alert)))
