"""pytest fixtures: mock FHIR servers on free loopback ports.

Enable with ``pytest_plugins = ["healthy_homes.mock_server.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest

from healthy_homes.clock import Clock
from healthy_homes.mock_server.app import Mode
from healthy_homes.mock_server.server import RunningMockServer, build_server

DEFAULT_PATIENTS = 300
DEFAULT_SEED = 7

MockFhirFactory = Callable[..., RunningMockServer]


@pytest.fixture
def mock_fhir_factory() -> Iterator[MockFhirFactory]:
    """Call with ``patients=``, ``seed=``, ``mode=``, ``clock=``, ``today=`` for more servers.

    Every server started through the factory is stopped at teardown.
    """
    started: list[RunningMockServer] = []

    def factory(
        *,
        patients: int = DEFAULT_PATIENTS,
        seed: int = DEFAULT_SEED,
        mode: Mode = "practice",
        clock: Clock | None = None,
        today: date | None = None,
        ods_code: str = "A12345",
    ) -> RunningMockServer:
        server = build_server(
            patients=patients if mode == "practice" else 0,
            seed=seed,
            mode=mode,
            clock=clock,
            today=today,
            ods_code=ods_code,
        )
        server.start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.stop()


@pytest.fixture
def mock_fhir_server(mock_fhir_factory: MockFhirFactory) -> RunningMockServer:
    """A practice-mode server with about 300 patients (seed 7); ``.base_url``, ``.store``."""
    return mock_fhir_factory()
