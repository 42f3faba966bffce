"""Recording cards as 'shown', off the answer's path and in batches.

A card's 'shown' event is written after the answer has gone, and calls that arrive
while a write is in progress join the next one: one transaction (one fsync) per
batch rather than per card, and no connection waits for the disk. Feedback waits
for pending writes first, so it always finds the card it refers to. A crash loses
at most the batch being written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import anyio
from sqlalchemy import insert, select, update

from healthy_homes.clock import Clock
from healthy_homes.flags.events import EventKind, Source
from healthy_homes.flags.transitions import OPEN
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagEvent, FlagRecord, FlagStatus

log = logging.getLogger(__name__)
_EVENT = FlagEvent.__table__  # type: ignore[attr-defined]
_FLAG = FlagRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Shown:
    """A card handed out: its uuid becomes the id of the flag's 'shown' event."""

    flag_id: str
    card_uuid: str
    user: str
    hook: str


class ShownRecorder:
    """Collects shown cards and writes them in batches on a worker thread."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._pending: list[Shown] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, shown: Shown) -> None:
        """Queue one card; starts a writer if none is running."""
        self._pending.append(shown)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def wait(self) -> None:
        """Return once everything queued so far is written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await anyio.to_thread.run_sync(self.write, batch)
            except Exception:  # a lost 'shown' must not take the service down
                log.exception("could not record %d shown cards", len(batch))

    def write(self, batch: list[Shown]) -> None:
        """Record a batch in one transaction; a card seen before, or a closed flag, is skipped.

        Plain SQL statements rather than ORM objects: this runs for every card shown and
        competes with the answers for the interpreter.
        """
        now = self.clock.now()
        cards = {s.card_uuid: s for s in batch}  # the same card twice in a batch: once
        with self.db.engine.begin() as connection:
            seen = set(
                connection.execute(
                    select(_EVENT.c.id).where(_EVENT.c.id.in_(list(cards)))
                ).scalars()
            )
            fresh = [s for card, s in cards.items() if card not in seen]
            if not fresh:
                return
            found = connection.execute(
                select(_FLAG.c.id, _FLAG.c.practice_ods).where(
                    _FLAG.c.id.in_(sorted({s.flag_id for s in fresh})),
                    _FLAG.c.status.in_(sorted(OPEN)),
                )
            )
            open_flags: dict[str, str] = {flag_id: practice for flag_id, practice in found}
            rows = [
                {
                    "id": s.card_uuid,
                    "flag_id": s.flag_id,
                    "practice_ods": open_flags[s.flag_id],
                    "kind": EventKind.SHOWN.value,
                    "reason": None,
                    "actor": s.user[:120],
                    "source": Source.CDS_HOOKS.value,
                    "hook": s.hook,
                    "at": now,
                }
                for s in fresh
                if s.flag_id in open_flags
            ]
            if not rows:
                return
            connection.execute(insert(_EVENT), rows)
            connection.execute(
                update(_FLAG)
                .where(_FLAG.c.id.in_({r["flag_id"] for r in rows}))
                .values(
                    status=FlagStatus.SHOWN.value, shown_at=now, updated_at=now, snoozed_until=None
                )
            )
