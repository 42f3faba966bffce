"""The operations endpoint of ``healthy-homes serve``: ``/healthz``, ``/readyz``, ``/metrics``.

Health and readiness are open (probes carry no credentials and learn only yes or
no); ``/metrics`` needs the ``[ops] metrics_token`` as a bearer token, the usual way
a Prometheus scraper authenticates (``authorization`` in its scrape config).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from healthy_homes.clock import Clock
from healthy_homes.config.ops import OpsConfig
from healthy_homes.ops.collector import StoreCollector
from healthy_homes.ops.health import readiness
from healthy_homes.store.db import Database


def _authorised(request: Request, config: OpsConfig) -> Response | None:
    """None if the bearer token matches, else the refusal to send."""
    if config.metrics_token is None:
        return JSONResponse({"error": "metrics_token is not configured"}, status_code=403)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = config.metrics_token.get_secret_value()
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        return JSONResponse(
            {"error": "bearer token required"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return None


def create_ops_app(
    db: Database, config: OpsConfig, clock: Clock, *, scheduler_running: Callable[[], bool]
) -> FastAPI:
    """The app; ``scheduler_running`` tells readiness whether the connector's jobs run."""
    app = FastAPI(title="Healthy Homes operations", docs_url=None, redoc_url=None, openapi_url=None)
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreCollector(db, clock))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready: database reachable, migrations at head, scheduler running."""
        checks = readiness(db, scheduler_running)
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        """Prometheus text format: this process's figures, then the deployment's."""
        refused = _authorised(request, config)
        if refused is not None:
            return refused
        body = generate_latest(REGISTRY) + generate_latest(store)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
