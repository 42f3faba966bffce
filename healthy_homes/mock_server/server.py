"""A running mock server: app, store and loopback URL together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from types import TracebackType

from fastapi import FastAPI

from healthy_homes.clock import Clock, SystemClock
from healthy_homes.mock_server.app import AuthExtension, Mode, create_app
from healthy_homes.mock_server.generator import seed_store
from healthy_homes.mock_server.routes import FHIR_BASE
from healthy_homes.mock_server.store import MockStore
from healthy_homes.serving import ServerThread


@dataclass
class RunningMockServer:
    """A mock FHIR server on a loopback port."""

    app: FastAPI
    store: MockStore
    thread: ServerThread
    url: str = ""

    @property
    def base_url(self) -> str:
        """The FHIR base, ``http://127.0.0.1:PORT/fhir``."""
        return self.url + FHIR_BASE

    def start(self) -> RunningMockServer:
        """Start serving; return self."""
        self.url = self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.thread.stop()

    def __enter__(self) -> RunningMockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def build_server(
    *,
    patients: int = 0,
    seed: int = 7,
    mode: Mode = "practice",
    clock: Clock | None = None,
    today: date | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    ods_code: str = "A12345",
    auth: AuthExtension | None = None,
) -> RunningMockServer:
    """A not-yet-started server, seeded with a generated practice when ``patients`` > 0."""
    clock = clock or SystemClock()
    store = MockStore(clock)
    if patients:
        seed_store(store, patients, seed, today or clock.now().date(), ods_code)
    app = create_app(store, mode=mode, auth=auth)
    return RunningMockServer(app, store, ServerThread(app, host, port))
