"""The operations endpoint next to ``serve``: uvicorn in a thread of the connector process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from healthy_homes.connector.service import ConnectorService
from healthy_homes.ops.app import create_ops_app
from healthy_homes.serving import ServerThread

log = logging.getLogger(__name__)


@contextmanager
def ops_endpoint(service: ConnectorService) -> Iterator[str | None]:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` while inside; yields the URL (or None)."""
    config = service.settings.ops
    if not config.enabled:
        yield None
        return
    app = create_ops_app(
        service.db, config, service.clock, scheduler_running=service.scheduler_running
    )
    server = ServerThread(app, config.host, config.port)
    try:
        url = server.start()
    except (OSError, RuntimeError) as exc:
        # Referrals matter more than probes: run on, and let monitoring notice the silence.
        log.error("operations endpoint not started on %s:%d (%s)", config.host, config.port, exc)
        yield None
        return
    try:
        yield url
    finally:
        server.stop()
