"""Stand-ins for other people's systems in FHIR client tests."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from healthy_homes.fhir.client import FhirClient

BASE = "https://gp.example.org/fhir"
Step = httpx.Response | Exception
MakeClient = Callable[..., FhirClient]


class ScriptedServer:
    """Someone else's FHIR server: answers each request with the next scripted step."""

    def __init__(self, steps: list[Step], *, then: Step | None = None) -> None:
        self.steps = list(steps)
        self.then = then if then is not None else httpx.Response(200, json=bundle())
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if self.steps else self.then
        if isinstance(step, Exception):
            raise step
        return step


class SleepRecorder:
    """An async sleep that records how long it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def bundle(**extra: object) -> dict[str, object]:
    """An empty searchset Bundle."""
    return {"resourceType": "Bundle", "type": "searchset", "entry": [], **extra}
