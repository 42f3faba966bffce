"""The ``[ops]`` section: the operations endpoint of ``healthy-homes serve`` and worker leases.

``/healthz`` and ``/readyz`` are open (load balancers and systemd probe them);
``/metrics`` (Prometheus text format) needs ``metrics_token`` as a bearer token, since
its figures name practices and show how busy each one is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class OpsConfig(BaseModel):
    """Health, readiness and metrics endpoint; practice leases; graceful shutdown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="serve /healthz, /readyz and /metrics")
    host: str = Field(default="127.0.0.1", description="address the endpoint listens on")
    port: int = Field(default=9464, ge=0, le=65535, description="its port (0: any free port)")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token a Prometheus scraper sends for /metrics (unset: /metrics "
        "refuses every request)",
    )
    lease_seconds: float = Field(
        default=60.0,
        ge=1.0,
        description="on SQLite, how long a worker's claim on a practice lasts without renewal; "
        "a dead worker's practices are picked up after this (PostgreSQL uses advisory locks, "
        "freed the moment the worker's connection drops)",
    )
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, how long runs and deliveries in progress may take to finish "
        "before they are cut short (their outbox leases are then released)",
    )
