"""Figures of the whole deployment, read from the store at scrape time.

Flags and the outbox are moved by several processes (connector workers, the CDS Hooks
service, the pop-up page), so counting them in one process would show only its share;
the database has the whole story. Counts only, never patient data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from healthy_homes.clock import Clock
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagEvent, OutboxEntry, OutboxState
from healthy_homes.store.ops_models import PracticeRunRecord

#: Flag event kinds that are a clinician acting on a prompt.
ACTED_ON = ("accepted", "declined", "not-appropriate", "dismissed", "snoozed")
WAITING = (OutboxState.PENDING.value, OutboxState.IN_FLIGHT.value)
#: Outbox states that end a delivery, reported as its outcome.
OUTCOMES = (OutboxState.DELIVERED.value, OutboxState.DEAD.value, OutboxState.CANCELLED.value)


class StoreCollector(Collector):
    """Flags raised, shown and acted on; outbox depth, age and outcomes; latest runs."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """One pass over the store; ``healthy_homes_store_up`` 0 if it cannot be read."""
        up = GaugeMetricFamily("healthy_homes_store_up", "Whether the store could be read")
        try:
            figures = list(self._figures())
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def _figures(self) -> Iterator[Metric]:
        now = self.clock.now()
        with self.db.session() as session:
            kinds = dict(
                session.exec(select(FlagEvent.kind, func.count()).group_by(FlagEvent.kind)).all()
            )
            states = dict(
                session.exec(
                    select(OutboxEntry.state, func.count()).group_by(OutboxEntry.state)
                ).all()
            )
            oldest = session.exec(
                select(func.min(OutboxEntry.created_at)).where(col(OutboxEntry.state).in_(WAITING))
            ).one()
            retrying = session.exec(
                select(func.count()).where(
                    col(OutboxEntry.state) == OutboxState.PENDING, col(OutboxEntry.attempts) > 0
                )
            ).one()
            runs = list(session.exec(select(PracticeRunRecord)))
        events = CounterMetricFamily(
            "healthy_homes_flag_events", "Flag lifecycle events by kind", labels=["kind"]
        )
        for kind in sorted(set(kinds) | {"raised", "shown"}):
            events.add_metric([kind], kinds.get(kind, 0))
        yield events
        acted = CounterMetricFamily(
            "healthy_homes_flags_acted_on", "Flags a clinician acted on (any outcome)"
        )
        acted.add_metric([], sum(kinds.get(kind, 0) for kind in ACTED_ON))
        yield acted
        yield from self._outbox(states, oldest, int(retrying), now)
        last = GaugeMetricFamily(
            "healthy_homes_last_run_timestamp_seconds",
            "When each practice job last finished, by outcome",
            labels=["practice", "kind", "outcome"],
        )
        for run in runs:
            last.add_metric([run.practice_ods, run.kind, run.outcome], run.finished_at.timestamp())
        yield last

    def _outbox(
        self, states: dict[str, int], oldest: datetime | None, retrying: int, now: datetime
    ) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "healthy_homes_outbox_depth", "Referrals waiting to be delivered (pending or in flight)"
        )
        depth.add_metric([], sum(states.get(s, 0) for s in WAITING))
        yield depth
        age = GaugeMetricFamily(
            "healthy_homes_outbox_oldest_age_seconds",
            "Age of the oldest referral still waiting (0 when none waits)",
        )
        age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield age
        by_state = GaugeMetricFamily(
            "healthy_homes_outbox_entries", "Outbox entries by state", labels=["state"]
        )
        for state in OutboxState:
            by_state.add_metric([state.value], states.get(state.value, 0))
        yield by_state
        outcomes = CounterMetricFamily(
            "healthy_homes_deliveries",
            "Referral deliveries by outcome (delivered, dead, cancelled)",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            outcomes.add_metric([outcome], states.get(outcome, 0))
        yield outcomes
        waiting = GaugeMetricFamily(
            "healthy_homes_outbox_retrying", "Referrals waiting for another attempt after a failure"
        )
        waiting.add_metric([], retrying)
        yield waiting
