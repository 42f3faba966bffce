"""The operations endpoint over HTTP after real work: health, readiness and every metric asked for.

Issue 8: "A test scrapes the metrics endpoint and finds the figures above" (sync
durations, pages fetched, errors by class, flags raised / shown / acted on, outbox
depth and oldest age, deliveries by outcome).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from healthy_homes.clock import FixedClock
from healthy_homes.config.ops import OpsConfig
from healthy_homes.ops.app import create_ops_app
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from tests.ops.world import DOWN, NEVER, SYNCED, build, settings_for

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples[(name, tuple(sorted(labels.items())))]


def _grown(samples, before, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return _value(samples, name, **labels) - before.get((name, tuple(sorted(labels.items()))), 0)


def test_metrics_after_sync_delivery_and_flag_actions(tmp_path: Path, mock_fhir_factory) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    db.upgrade()
    practice = mock_fhir_factory(patients=120, seed=21, ods_code=SYNCED)
    housing = mock_fhir_factory(mode="housing")
    settings = settings_for(db, practice, housing)
    clock = FixedClock(NOW)
    # In-process counters live as long as the process: compare with what was there before.
    before = _samples(generate_latest(REGISTRY).decode())
    world = build(settings, db, clock)
    clock.advance(timedelta(minutes=5))
    running = {"scheduler": False}
    app = create_ops_app(db, settings.ops, clock, scheduler_running=lambda: running["scheduler"])

    with ServerThread(app) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        not_ready = httpx.get(f"{url}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"] == {
            "database": True,
            "migrations": True,
            "scheduler": False,
        }
        running["scheduler"] = True
        assert httpx.get(f"{url}/readyz").status_code == 200

        assert httpx.get(f"{url}/metrics").status_code == 401
        wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401
        scrape = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    samples = _samples(scrape.text)
    metric = "healthy_homes_sync_duration_seconds"

    # Sync durations: one histogram per practice and run kind, with a positive duration.
    assert _grown(samples, before, f"{metric}_count", practice=SYNCED, kind="auto") == 1
    assert _grown(samples, before, f"{metric}_sum", practice=SYNCED, kind="auto") > 0
    assert _grown(samples, before, f"{metric}_count", practice=DOWN, kind="auto") == 1
    assert (
        "healthy_homes_sync_duration_seconds_count",
        (("kind", "auto"), ("practice", NEVER)),
    ) not in samples
    assert (
        _grown(
            samples,
            before,
            "healthy_homes_practice_runs_total",
            practice=SYNCED,
            kind="auto",
            outcome="ok",
        )
        == 1
    )
    assert (
        _grown(
            samples,
            before,
            "healthy_homes_practice_runs_total",
            practice=DOWN,
            kind="auto",
            outcome="failed",
        )
        == 1
    )
    # Pages fetched for the synced practice (a Bundle per register at least).
    assert _grown(samples, before, "healthy_homes_fhir_pages_fetched_total", practice=SYNCED) >= 4
    # Errors by class: the refused endpoint's connection errors and its failed run.
    errors = "healthy_homes_errors_total"
    assert _grown(samples, before, errors, where="fhir", error_class="FhirTransportError") >= 1
    sync_errors = [k for k in samples if k[0] == errors and ("where", "sync") in k[1]]
    assert sum(samples[k] - before.get(k, 0) for k in sync_errors) == 1  # the refused practice
    # Flags raised, shown and acted on, from the store.
    assert (
        _value(samples, "healthy_homes_flag_events_total", kind="raised") == world.flags_raised > 0
    )
    assert _value(samples, "healthy_homes_flag_events_total", kind="shown") == 2
    assert _value(samples, "healthy_homes_flag_events_total", kind="accepted") == 1
    assert _value(samples, "healthy_homes_flags_acted_on_total") == 2
    # Outbox depth and oldest age (FixedClock: exactly 15 minutes), deliveries by outcome.
    assert _value(samples, "healthy_homes_outbox_depth") == world.waiting == 2
    assert _value(samples, "healthy_homes_outbox_oldest_age_seconds") == 15 * 60
    assert _value(samples, "healthy_homes_deliveries_total", outcome="delivered") == world.delivered
    assert _value(samples, "healthy_homes_deliveries_total", outcome="dead") == world.dead
    assert _value(samples, "healthy_homes_deliveries_total", outcome="cancelled") == 0
    assert _value(samples, "healthy_homes_store_up") == 1
    last = "healthy_homes_last_run_timestamp_seconds"
    assert _value(samples, last, practice=SYNCED, kind="auto", outcome="ok") == NOW.timestamp()
    # Nothing patient-shaped in the exposition.
    assert not re.search(r"(?<![\d.])999\d{7}(?!\d)", scrape.text)
    db.dispose()


def test_metrics_refused_when_no_token_is_configured(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    db.upgrade()
    app = create_ops_app(db, OpsConfig(), FixedClock(NOW), scheduler_running=lambda: True)
    with ServerThread(app) as url:
        response = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403
        assert httpx.get(f"{url}/readyz").status_code == 200
    db.dispose()
