"""Housing mode: the server plays a housing service that receives referrals.

Tasks arrive in referral transactions (Patient, Consent, ServiceRequest, Task, each a
conditional create). The receiver moves each Task on, as in the closed-loop pattern
of the HL7 SDOH Clinical Care IG: received, accepted or rejected (with a
statusReason), in-progress, completed (with an output). Moves come from an admin
call (``POST /admin/tasks/{id}/status``) or a scripted timeline of ``(delay, status)``
steps counted from the Task's creation. Steps are applied lazily, before each request
is handled, against the store's clock: a test advances a ``FixedClock`` instead of
sleeping, and a poller sees a step on its first request after the step is due.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from healthy_homes.mock_server.fhirdates import format_instant, to_us
from healthy_homes.mock_server.outcome import FhirHttpError
from healthy_homes.mock_server.routes import fhir_response
from healthy_homes.mock_server.store import MockStore, StoreError, Version

JSON = dict[str, Any]
#: Moves a receiver may make (https://hl7.org/fhir/R4/task.html#statemachine).
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested", "received", "cancelled"}),
    "requested": frozenset({"received", "accepted", "rejected", "cancelled"}),
    "received": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"ready", "in-progress", "on-hold", "failed", "cancelled"}),
    "ready": frozenset({"in-progress", "on-hold", "failed", "cancelled"}),
    "in-progress": frozenset({"completed", "on-hold", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "failed", "cancelled"}),
}
#: The IG expects a statusReason for these.
NEEDS_REASON = frozenset({"rejected", "cancelled", "on-hold", "failed"})
RESULTING_ACTIVITY = {
    "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
    "code": "resulting-activity",
    "display": "Performed Activity",
}
DEFAULT_OUTPUT = "Housing support provided"
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_STEP = re.compile(r"^(?P<status>[a-z-]+)@(?P<n>\d+)(?P<unit>ms|s|m|h|d)(?::(?P<reason>.+))?$")


@dataclass(frozen=True, slots=True)
class Step:
    """Move a Task to ``status`` once ``delay`` has passed since it was created."""

    delay: timedelta
    status: str
    reason: str | None = None


def parse_timeline(text: str) -> list[Step]:
    """Parse ``received@0s,accepted@30s,in-progress@2m,completed@1h`` (``rejected@5m:why``)."""
    steps = []
    for part in (p.strip() for p in text.split(",")):
        match = _STEP.match(part)
        if match is None:
            raise ValueError(f"timeline step {part!r}: expected STATUS@DELAY[:REASON], e.g. 30s")
        if match["status"] not in {s for n in TRANSITIONS.values() for s in n}:
            raise ValueError(f"timeline step {part!r}: {match['status']} is not a Task status")
        delay = timedelta(**{_UNITS[match["unit"]]: int(match["n"])})
        steps.append(Step(delay, match["status"], match["reason"]))
    if [s.delay for s in steps] != sorted(s.delay for s in steps):
        raise ValueError("timeline steps must be in order of delay")
    return steps


class StatusChange(BaseModel):
    """Body of ``POST /admin/tasks/{id}/status``."""

    model_config = ConfigDict(extra="forbid")

    status: str
    reason: str | None = None
    output: str | None = None


@dataclass(slots=True)
class _Tracked:
    created_us: int
    steps: tuple[Step, ...]
    done: int = 0


class HousingInbox:
    """The received Tasks of a housing-mode server and the timeline they follow."""

    def __init__(self, store: MockStore, timeline: Sequence[Step] = ()) -> None:
        self.store = store
        #: Steps for Tasks created from now on; Tasks keep the timeline they arrived under.
        self.timeline: tuple[Step, ...] = tuple(timeline)
        self._tracked: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        store.add_listener(self._on_write)

    def _on_write(self, version: Version) -> None:
        if version.type != "Task" or version.version != 1 or version.deleted:
            return
        if self.timeline and version.resource().get("status") in TRANSITIONS:
            # The clock's reading, so "accepted@10m" is due when a FixedClock has moved
            # 10 minutes, however many microseconds the store's stamps ran ahead of it.
            created = min(version.ts, to_us(self.store.clock.now()))
            with self._lock:
                self._tracked[version.id] = _Tracked(created, self.timeline)

    def apply_due(self) -> int:
        """Apply every timeline step now due; return how many Tasks moved."""
        if not self._tracked:
            return 0
        moved = 0
        with self.store.lock:
            # The store's time, not the bare clock: writes under a still clock run ahead.
            now = self.store.snapshot_time()
            with self._lock:
                tracked = list(self._tracked.items())
            for task_id, track in tracked:
                while track.done < len(track.steps):
                    step = track.steps[track.done]
                    if track.created_us + _us(step.delay) > now:
                        break
                    track.done += 1
                    try:
                        self.move(task_id, step.status, step.reason)
                        moved += 1
                    except FhirHttpError:
                        # Someone else moved the Task (say, the sender cancelled it).
                        track.done = len(track.steps)
                if track.done >= len(track.steps):
                    with self._lock:
                        self._tracked.pop(task_id, None)
        return moved

    def move(
        self, task_id: str, status: str, reason: str | None = None, output: str | None = None
    ) -> Version:
        """Move a Task to ``status``; 404 if unknown, 409 if not allowed, 400 without reason."""
        with self.store.lock:
            try:
                current = self.store.read("Task", task_id)
            except StoreError as exc:
                raise FhirHttpError(exc.status, str(exc)) from None
            task = current.resource()
            old = str(task.get("status"))
            if status not in TRANSITIONS.get(old, frozenset()):
                raise FhirHttpError(409, f"Task/{task_id} cannot go from {old} to {status}")
            if status in NEEDS_REASON and not reason:
                raise FhirHttpError(400, f"moving a Task to {status} needs a reason")
            now = format_instant(self.store.snapshot_time())
            task["status"] = status
            task.pop("statusReason", None)
            if reason:
                task["statusReason"] = {"text": reason}
            task["lastModified"] = now
            period = task.setdefault("executionPeriod", {})
            if status == "in-progress":
                period.setdefault("start", now)
            if status in ("completed", "failed"):
                period.setdefault("start", now)
                period["end"] = now
            if not period:
                del task["executionPeriod"]
            if status == "completed":
                task.setdefault("output", []).append(
                    {
                        "type": {"coding": [RESULTING_ACTIVITY]},
                        "valueCodeableConcept": {"text": output or DEFAULT_OUTPUT},
                    }
                )
            version, _ = self.store.update(task, if_match=current.version)
            return version

    def take_over(self, task_id: str) -> None:
        """Stop the timeline for a Task moved by hand."""
        with self._lock:
            self._tracked.pop(task_id, None)


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class ApplyDueSteps:
    """ASGI middleware: apply due timeline steps before handling each request."""

    def __init__(self, app: ASGIApp, *, inbox: HousingInbox) -> None:
        self.app = app
        self.inbox = inbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Bring Tasks up to date, then pass the request on."""
        if scope["type"] == "http":
            self.inbox.apply_due()
        await self.app(scope, receive, send)


def inbox_of(app: FastAPI) -> HousingInbox:
    """The housing inbox of a housing-mode ``app``."""
    inbox: HousingInbox = app.state.housing
    return inbox


router = APIRouter(prefix="/admin/tasks", tags=["admin"])


@router.post("/{task_id}/status")
async def change_status(request: Request, task_id: str) -> Response:
    """Move a Task by hand: ``{"status": "rejected", "reason": "outside our area"}``."""
    try:
        change = StatusChange.model_validate_json(await request.body())
    except ValidationError:
        raise FhirHttpError(
            400, 'expected {"status": ..., "reason"?: ..., "output"?: ...}'
        ) from None
    inbox = inbox_of(request.app)
    version = inbox.move(task_id, change.status, change.reason, change.output)
    inbox.take_over(task_id)
    return fhir_response(version.body, 200, {"ETag": version.etag})


@dataclass(frozen=True)
class HousingMode:
    """App extension: Task timelines and ``/admin/tasks`` over the app's store."""

    timeline: tuple[Step, ...] = ()

    def install(self, app: FastAPI) -> None:
        """Make ``app`` a housing service's endpoint; the inbox is ``app.state.housing``."""
        inbox = HousingInbox(app.state.store, self.timeline)
        app.state.housing = inbox
        app.add_middleware(ApplyDueSteps, inbox=inbox)
        app.include_router(router)
