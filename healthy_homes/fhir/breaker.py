"""A per-endpoint circuit breaker: stop calling a server that keeps failing.

closed --(N consecutive failures)--> open --(cool-down on the clock)--> half-open
half-open lets one trial request through: success closes, failure opens again.
"""

from __future__ import annotations

import enum
import threading
from datetime import datetime, timedelta

from healthy_homes.clock import Clock, SystemClock
from healthy_homes.errors import CircuitOpenError, FhirError, FhirResponseError, FhirStatusError


class BreakerState(enum.Enum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts consecutive failures of one endpoint and refuses calls while open."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: timedelta = timedelta(seconds=30),
        clock: Clock | None = None,
        name: str = "endpoint",
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self.name = name
        self._clock = clock or SystemClock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at: datetime | None = None
        self._probing = False
        # The breaker may be shared by clients running on different threads.
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        """The current state, moving open to half-open once the cool-down has passed."""
        with self._lock:
            self._maybe_half_open()
            return self._state

    def before_call(self, *, url: str | None = None, practice: str | None = None) -> None:
        """Allow a call, or raise CircuitOpenError without anything being sent."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return
            raise CircuitOpenError(
                f"circuit open for {self.name} after {self._failures} consecutive failures; "
                "not sending",
                retry_after=self._remaining(),
                url=url,
                practice=practice,
            )

    def record_success(self) -> None:
        """The server answered sensibly: close the breaker."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        """The server failed (transport error, 5xx, 429, truncated body)."""
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock.now()
            self._probing = False

    def record_error(self, exc: FhirError) -> None:
        """Judge a failed call by what it says about the server's health."""
        if exc.retryable:
            self.record_failure()
        elif isinstance(exc, FhirStatusError | FhirResponseError):
            self.record_success()  # the server is up; it just said no
        else:
            self.release()  # e.g. our token endpoint refused us: no news about the server

    def release(self) -> None:
        """A call ended with no verdict (cancelled): let another trial through."""
        with self._lock:
            self._probing = False

    def _maybe_half_open(self) -> None:
        if self._state is BreakerState.OPEN and self._remaining() == 0.0:
            self._state = BreakerState.HALF_OPEN
            self._probing = False

    def _remaining(self) -> float:
        if self._opened_at is None:
            return 0.0
        left = self._opened_at + self.cooldown - self._clock.now()
        return max(0.0, left.total_seconds())
