"""What the FHIR client may say about a call: redacted URLs and one log line per attempt.

Logs and error messages leave the practice (log shipping, other systems), so they
carry method, path, status, attempt, duration and request id, and never a query
string, a body, or anything shaped like an NHS number.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit, urlunsplit

from healthy_homes.errors import FhirError, FhirStatusError
from healthy_homes.metrics import count_error

# Attempt lines are the client's voice: keep them under its logger name for log filters.
log = logging.getLogger("healthy_homes.fhir.client")

# Some servers use the NHS number as the Patient id, and diagnostics may quote it.
_NHS_NUMBER_LIKE = re.compile(r"(?<!\d)\d{10}(?!\d)")


def redact(text: str) -> str:
    """Text with anything shaped like an NHS number masked."""
    return _NHS_NUMBER_LIKE.sub("[redacted]", text)


def safe_url(url: str) -> str:
    """A URL fit for logs and errors: no query string (queries can hold NHS numbers)."""
    parts = urlsplit(url)
    return redact(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))


def attempt_status(exc: FhirError, status: str) -> str:
    """What to log as a failed attempt's status: the HTTP code, or the kind of failure."""
    if isinstance(exc, FhirStatusError):
        return str(exc.status_code)
    return f"{status} {type(exc).__name__}" if status != "-" else type(exc).__name__


def log_attempt(
    *,
    practice: str | None,
    method: str,
    url: str,
    status: str,
    attempt: int,
    started: float,
    request_id: str,
) -> None:
    """One line per attempt; fields also in ``extra`` for structured log handlers."""
    ok = status.isdigit() and int(status) < 400
    if ok and not log.isEnabledFor(logging.DEBUG):
        return  # a full sync makes hundreds of calls: build nothing nobody will read
    if not ok:
        count_error("fhir", f"http_{status}" if status.isdigit() else status.split()[-1])
    elapsed_ms = (time.perf_counter() - started) * 1000
    path = redact(urlsplit(url).path)
    log.log(
        logging.DEBUG if ok else logging.INFO,
        "fhir %s %s -> %s attempt=%d %.0fms request_id=%s",
        method,
        path,
        status,
        attempt,
        elapsed_ms,
        request_id,
        extra={
            "request_id": request_id,
            "practice": practice,
            "http_method": method,
            "path": path,
            "status": status,
            "attempt": attempt,
            "duration_ms": round(elapsed_ms, 1),
        },
    )
