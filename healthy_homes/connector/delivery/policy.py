"""When a failed delivery is tried again, and when it stops being tried.

The wait is :func:`healthy_homes.fhir.retry.backoff_delay` (exponential with full
jitter, capped; a receiver's Retry-After is a floor), the same policy the FHIR client
retries with. Across attempts the count lives in the outbox row, not in a running
tenacity loop: a retry may happen hours later, in another process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from healthy_homes.config.models import DeliveryConfig
from healthy_homes.errors import CircuitOpenError, FhirError, FhirStatusError, HealthyHomesError
from healthy_homes.fhir.retry import RetryPolicy, backoff_delay


@dataclass(frozen=True)
class Verdict:
    """What to do with an entry after a failed attempt."""

    dead: bool
    delay: float = 0.0


class DeliveryPolicy:
    """Backoff and dead-letter rules from ``[delivery]``, with injectable randomness."""

    def __init__(self, config: DeliveryConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._backoff = RetryPolicy(
            backoff_base=config.backoff_base_seconds,
            backoff_cap=config.backoff_cap_seconds,
            retry_after_cap=config.backoff_cap_seconds,
        )

    def after_failure(
        self,
        attempts: int,
        *,
        retryable: bool,
        retry_after: float | None = None,
        final: bool = True,
    ) -> Verdict:
        """Dead if the failure is final or attempts are used up, else wait and retry.

        ``final=False`` only computes the wait (for a failure that used no attempt).
        """
        if final and (not retryable or attempts >= self.config.max_attempts):
            return Verdict(dead=True)
        wait = backoff_delay(self._backoff, attempts, self._rng)
        if retry_after is not None:
            # The receiver's Retry-After is a floor, not a replacement: an open breaker's
            # "0 s left" must not make every waiting referral go again at once.
            wait = max(wait, backoff_delay(self._backoff, attempts, self._rng, retry_after))
        return Verdict(False, wait)


def retry_after_of(exc: BaseException) -> float | None:
    """A Retry-After the receiver sent, found on the error or the error it wraps."""
    seen: BaseException | None = exc
    while seen is not None:
        value = getattr(seen, "retry_after", None)
        if isinstance(value, int | float):
            return float(value)
        seen = seen.__cause__
    return None


def nothing_sent(exc: BaseException) -> bool:
    """Whether the failure happened before anything left us (an open circuit breaker)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, CircuitOpenError):
            return True
        seen = seen.__cause__
    return False


def safe_error(exc: BaseException) -> str:
    """What went wrong, fit for the outbox, an alert and a log: no text from the receiver.

    A receiver's OperationOutcome diagnostics may quote the patient back at us, so an
    HTTP failure is reduced to its status code and a connection failure to its class.
    Our own messages (ids and operational context only) are kept.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FhirStatusError):
            return f"housing service answered HTTP {seen.status_code}"
        if isinstance(seen, FhirError):
            return f"housing service not reached ({type(seen).__name__})"
        seen = seen.__cause__
    if isinstance(exc, HealthyHomesError) and exc.__cause__ is None:
        return str(exc)
    return f"{type(exc).__name__} (details in the worker's debug log)"
