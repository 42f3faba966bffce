"""The operations endpoint beside ``serve``: on its configured port, or not at all if taken."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import pytest

from healthy_homes.clock import SystemClock
from healthy_homes.config.models import Settings
from healthy_homes.connector.service import ConnectorService
from healthy_homes.ops.endpoint import ops_endpoint
from healthy_homes.store.db import Database


def _answers(db: Database, ops: dict[str, object]) -> tuple[str | None, int | None]:
    settings = Settings.model_validate({"storage": {"url": db.url}, "ops": ops})

    async def run() -> tuple[str | None, int | None]:
        async with ConnectorService(settings, db, SystemClock()) as service:
            with ops_endpoint(service) as url:
                if url is None:
                    return None, None
                return url, (await asyncio.to_thread(httpx.get, f"{url}/healthz")).status_code

    return asyncio.run(run())


def test_endpoint_serves_on_its_port_and_a_taken_port_does_not_stop_the_connector(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ops.db'}")
    db.upgrade()
    url, status = _answers(db, {"port": 0})
    assert url is not None and url.startswith("http://127.0.0.1:") and status == 200
    assert _answers(db, {"enabled": False}) == (None, None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="healthy_homes.ops.endpoint"):
            assert _answers(db, {"port": port}) == (None, None)
    assert f"operations endpoint not started on 127.0.0.1:{port}" in caplog.text
    db.dispose()
