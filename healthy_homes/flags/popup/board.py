"""The prompts in force at one practice, and the open pages that hear about changes.

A page that connects gets a ``snapshot`` (listed, not popped up); after that each
new arrival is an ``arrived`` event (the pop-up) and each prompt that ends, whether
acted on here, elsewhere or because the patient left, a ``resolved`` event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from healthy_homes.flags.popup.prompts import Prompt
from healthy_homes.web.identity import Clinician
from healthy_homes.web.sse import Event

QUEUE_LIMIT = 100


@dataclass(eq=False)
class Subscriber:
    """One open page: its clinician and its event queue."""

    clinician: Clinician
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))

    def wants(self, prompt: Prompt) -> bool:
        """Only the clinician's own appointments, when we know who their Practitioner is."""
        mine = self.clinician.practitioner
        return mine is None or mine in prompt.arrival.practitioners

    closed: bool = False

    def offer(self, event: Event) -> None:
        """Queue an event; a page too slow to keep up is cut off and reconnects."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        """Close the page's stream (it reconnects and starts from a snapshot)."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass(frozen=True)
class Health:
    """Whether the last look at the practice server worked."""

    ok: bool = True
    message: str = ""


class PromptBoard:
    """Current prompts by flag id; publishes the differences to subscribers."""

    def __init__(self) -> None:
        self.prompts: dict[str, Prompt] = {}
        self.health = Health()
        # Answered here, but a poll that started before the answer may still list them.
        self._answered: set[str] = set()
        self._subscribers: set[Subscriber] = set()

    def visible_to(self, clinician: Clinician) -> list[Prompt]:
        """The prompts this clinician's page lists, earliest appointment first."""
        probe = Subscriber(clinician)
        wanted = [p for p in self.prompts.values() if probe.wants(p)]
        return sorted(wanted, key=lambda p: (p.time, -p.priority, p.flag_id))

    def subscribe(self, clinician: Clinician) -> Subscriber:
        """A new page: it starts with the snapshot and the server's health."""
        subscriber = Subscriber(clinician)
        snapshot = [p.for_page() for p in self.visible_to(clinician)]
        subscriber.offer(Event("snapshot", {"prompts": snapshot}))
        subscriber.offer(Event("status", self._health_data()))
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """The page went away."""
        self._subscribers.discard(subscriber)

    def close(self) -> None:
        """End every stream (shutting down)."""
        for subscriber in self._subscribers:
            subscriber.end()
        self._subscribers.clear()

    def update(self, current: dict[str, Prompt], *, announce: bool = True) -> None:
        """Replace the prompts; tell pages what arrived and what ended."""
        self._answered &= set(current)  # a poll without them has seen the answer
        current = {f: p for f, p in current.items() if f not in self._answered}
        for flag_id in [f for f in self.prompts if f not in current]:
            self.resolve(flag_id)
        for flag_id, prompt in current.items():
            if flag_id in self.prompts:
                self.prompts[flag_id] = prompt
                continue
            self.prompts[flag_id] = prompt
            kind = "arrived" if announce else "listed"
            self._publish(prompt, Event(kind, prompt.for_page(), id=flag_id))

    def answer(self, flag_id: str) -> None:
        """A clinician answered the prompt here: it ends now, and stays ended."""
        self._answered.add(flag_id)
        self.resolve(flag_id)

    def resolve(self, flag_id: str) -> None:
        """A prompt ended (acted on, or the patient is no longer in the building)."""
        prompt = self.prompts.pop(flag_id, None)
        if prompt is not None:
            self._publish(prompt, Event("resolved", {"flagId": flag_id}))

    def set_health(self, health: Health) -> None:
        """Tell pages when the practice server stops or starts answering."""
        if health != self.health:
            self.health = health
            for subscriber in self._subscribers:
                subscriber.offer(Event("status", self._health_data()))

    def _health_data(self) -> dict[str, object]:
        return {"ok": self.health.ok, "message": self.health.message}

    def _publish(self, prompt: Prompt, event: Event) -> None:
        for subscriber in self._subscribers:
            if subscriber.wants(prompt):
                subscriber.offer(event)
