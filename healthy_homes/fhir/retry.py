"""Retry policy: which FHIR requests may be repeated, when, and how long to wait.

Backoff is exponential with full jitter (a uniform wait between 0 and
``min(cap, base * 2**(attempt-1))``), so many connectors recovering at once do not
hit a practice's server in lock-step. A server's ``Retry-After`` wins, capped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from healthy_homes.errors import (
    CircuitOpenError,
    FhirError,
    FhirResponseError,
    FhirStatusError,
    FhirTransportError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

READ_METHODS = frozenset({"GET", "HEAD"})
# httpx errors raised before any byte of the request left us: safe to repeat anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RetryPolicy(BaseModel):
    """How hard to try one FHIR endpoint; times in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=20, description="tries per call, first included")
    backoff_base: float = Field(default=0.5, gt=0, description="first backoff ceiling")
    backoff_cap: float = Field(default=30.0, gt=0, description="largest backoff ceiling")
    retry_after_cap: float = Field(default=60.0, ge=0, description="longest Retry-After honoured")
    breaker_threshold: int = Field(default=5, ge=1, description="failures in a row that open")
    breaker_cooldown: float = Field(default=30.0, ge=0, description="open time before a trial")


def backoff_delay(
    policy: RetryPolicy, attempt: int, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    if retry_after is not None:
        return min(max(0.0, retry_after), policy.retry_after_cap)
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2.0 ** min(attempt - 1, 60))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def is_search(url: str) -> bool:
    """Whether the URL is a FHIR ``_search`` (a read even when POSTed)."""
    return url.split("?", 1)[0].rstrip("/").endswith("_search")


def is_idempotent(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> bool:
    """Whether sending this request twice has the same effect as sending it once.

    Only such requests are retried after a failure whose effect we cannot know
    (timeout, reset, 5xx): a plain POST that timed out may already have created a
    Flag or a referral, and sending it again would make a second one.
    """
    verb = method.upper()
    if verb in READ_METHODS or verb == "PUT":
        return True
    if verb != "POST":
        return False
    if is_search(url):
        return True
    if any(name.lower() == "if-none-exist" for name in (headers or {})):
        return True
    if body is None or body.get("resourceType") != "Bundle":
        return False
    if body.get("type") not in ("transaction", "batch"):
        return False
    entries = body.get("entry") or []
    return bool(entries) and all(_entry_idempotent(e) for e in entries)


def _entry_idempotent(entry: Mapping[str, Any]) -> bool:
    request = entry.get("request") or {}
    verb = str(request.get("method", "")).upper()
    if verb in READ_METHODS or verb == "PUT":
        return True
    return verb == "POST" and bool(request.get("ifNoneExist"))


def should_retry(exc: BaseException, *, method: str, idempotent: bool) -> bool:
    """Whether this failure of this request is worth another attempt."""
    if isinstance(exc, CircuitOpenError):
        return False  # nothing was sent; retrying now would only hit the open breaker
    if not isinstance(exc, FhirError) or not exc.retryable:
        return False
    if isinstance(exc, FhirResponseError):
        # A garbled answer to a write means the write happened. Repeat reads, and POSTs
        # that are idempotent (search, conditional create), but not a PUT: its If-Match
        # would now fail with 412 although the update went through.
        return method.upper() in READ_METHODS or (idempotent and method.upper() == "POST")
    if idempotent:
        return True
    return was_not_processed(exc)


def was_not_processed(exc: FhirError) -> bool:
    """Whether the server certainly did not act on the request."""
    if isinstance(exc, FhirStatusError):
        return exc.status_code == 429
    if isinstance(exc, FhirTransportError):
        return isinstance(exc.__cause__, _NOT_SENT)
    return False


class Retrier:
    """Runs one call's attempts under a policy, with injectable sleep and randomness."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None) if exc is not None else None
        return backoff_delay(self.policy, state.attempt_number, self._rng, retry_after)

    async def run(
        self,
        attempt: Callable[[int], Awaitable[T]],
        *,
        retry_if: Callable[[BaseException], bool],
        label: str = "call",
    ) -> T:
        """Await ``attempt(n)`` for n = 1, 2, ... until it succeeds or may not be retried."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "%s attempt %d failed (%s); retrying in %.2fs",
                label,
                state.attempt_number,
                type(exc).__name__,
                state.upcoming_sleep,
            )

        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(retry_if),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                return await attempt(try_.retry_state.attempt_number)
        raise AssertionError("tenacity ended without a result or an error")  # pragma: no cover
