"""The server side of the pop-up: look at the practice server every few seconds.

Server-side polling keeps the practice's FHIR endpoint behind this service: browsers
only ever talk to us, over one Server-Sent Events stream each.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from healthy_homes.clock import Clock
from healthy_homes.errors import FhirStatusError, HealthyHomesError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.popup.board import Health, PromptBoard
from healthy_homes.flags.popup.prompts import Prompt, build_prompt
from healthy_homes.flags.popup.watch import DEFAULT_WATCH_MAX_AGE, Arrival, arrivals
from healthy_homes.flags.transitions import get_flag
from healthy_homes.store.db import Database

log = logging.getLogger(__name__)
UNREACHABLE = "The practice system is not answering; prompts may be late. Retrying."


class PromptWatcher:
    """Polls arrivals for one practice and keeps the board up to date."""

    def __init__(
        self,
        *,
        board: PromptBoard,
        client: FhirClient,
        db: Database,
        practice: str,
        clock: Clock,
        zone: ZoneInfo,
        poll_seconds: float,
        watch_max_age: timedelta = DEFAULT_WATCH_MAX_AGE,
    ) -> None:
        self.board = board
        self.client = client
        self.db = db
        self.practice = practice
        self.clock = clock
        self.zone = zone
        self.poll_seconds = poll_seconds
        self.watch_max_age = watch_max_age
        self._baseline_taken = False

    async def poll_once(self) -> None:
        """One look; the first successful one only lists who is already in."""
        try:
            found = await arrivals(
                self.client,
                self.db,
                self.practice,
                self.clock,
                self.zone,
                watch_max_age=self.watch_max_age,
            )
            built = {fid: await self._prompt(arrival) for fid, arrival in found.items()}
            prompts = {fid: prompt for fid, prompt in built.items() if prompt is not None}
        except HealthyHomesError as exc:
            # Context only (practice, URL): never the patient behind the failure.
            log.warning("pop-up poll failed at practice %s: %s", self.practice, type(exc).__name__)
            self.board.set_health(Health(False, UNREACHABLE))
            return
        self.board.update(prompts, announce=self._baseline_taken)
        self._baseline_taken = True
        self.board.set_health(Health())

    async def _prompt(self, arrival: Arrival) -> Prompt | None:
        known = self.board.prompts.get(arrival.flag_id)
        if known is not None and known.arrival == arrival:
            return known
        with self.db.session() as session:
            flag = get_flag(session, arrival.flag_id)
        try:
            patient = await self.client.read("Patient", arrival.patient_id)
        except FhirStatusError as exc:
            if exc.status_code in (404, 410):  # record gone: nothing to offer
                return None
            raise
        return build_prompt(arrival, flag, patient, self.zone)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            await self.poll_once()
