"""In-process Prometheus metrics that any layer may bump (``prometheus-client`` only).

Bottom-level, so the FHIR client can count pages without knowing about the operations
app. Figures that belong to the whole deployment rather than one process (flags,
outbox) are read from the database at scrape time instead (``healthy_homes.ops``).
Labels carry practice ODS codes and error class names, never patient data.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Buckets for a practice run: sub-second incremental polls up to long full reads.
SYNC_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

SYNC_SECONDS = Histogram(
    "healthy_homes_sync_duration_seconds",
    "Duration of one practice run (sync, appointment watch or full reconciliation)",
    ["practice", "kind"],
    buckets=SYNC_BUCKETS,
)
PRACTICE_RUNS = Counter(
    "healthy_homes_practice_runs",
    "Practice runs by outcome (ok, failed, skipped)",
    ["practice", "kind", "outcome"],
)
PAGES_FETCHED = Counter(
    "healthy_homes_fhir_pages_fetched",
    "Search result pages (Bundles) fetched from practice FHIR servers",
    ["practice"],
)
ERRORS = Counter(
    "healthy_homes_errors",
    "Errors by where they happened and their class (FHIR attempts, practice runs)",
    ["where", "error_class"],
)


def count_error(where: str, error: BaseException | str) -> None:
    """Count one error under its class name (or the given label)."""
    name = error if isinstance(error, str) else type(error).__name__
    ERRORS.labels(where=where, error_class=name).inc()
