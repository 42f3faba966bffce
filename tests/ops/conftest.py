"""Operations tests: stores on SQLite and PostgreSQL, endpoints that hang or refuse, configs."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.conftest import migrated_postgres_url, postgres_url  # noqa: F401  (throwaway databases)
from tests.store.templates import migrated_sqlite


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated store on each backend (PostgreSQL skipped only when unreachable outside CI)."""
    if request.param == "sqlite":
        db = migrated_sqlite(tmp_path / "ops.db")
        db.dispose()
        return db.url
    return str(request.getfixturevalue("migrated_postgres_url"))


class HangingEndpoint:
    """Accepts TCP connections and never answers: a practice server that hangs.

    With ``trickle`` it starts a response and then sends one byte of a header every
    half second without ever finishing it, as a server stuck mid-response does: a
    client's read timeout never fires, so only the practice's own time limit (or the
    endpoint going away) ends the request.
    """

    def __init__(self, *, trickle: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()
        if trickle:
            threading.Thread(target=self._trickle, daemon=True).start()

    @property
    def url(self) -> str:
        """Its FHIR base URL."""
        return f"http://127.0.0.1:{self.port}/fhir"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Still-Thinking: ")
            self.accepted.append(conn)  # held open, never read from, never finished

    def _trickle(self) -> None:
        while not self.closed.wait(0.5):
            for conn in list(self.accepted):
                with contextlib.suppress(OSError):
                    conn.send(b".")

    def close(self) -> None:
        """Stop accepting and drop every connection: the endpoint is gone (refused from now)."""
        self.closed.set()
        # Closing alone would not do it: the accept thread, blocked in accept(), keeps the
        # socket listening, so a client's next try would connect and wait for its own
        # read timeout (30 s) instead of being refused. shutdown() wakes it and stops it.
        for sock in (self.sock, *self.accepted):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def hanging_endpoint() -> Iterator[HangingEndpoint]:
    """An endpoint that accepts connections but never answers."""
    endpoint = HangingEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def stuck_endpoint() -> Iterator[HangingEndpoint]:
    """An endpoint that starts every response and never finishes it."""
    endpoint = HangingEndpoint(trickle=True)
    yield endpoint
    endpoint.close()


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir"


def practice_toml(ods: str, url: str, *, timeout: float | None = None) -> str:
    """One ``[[practices]]`` entry."""
    extra = f"timeout_seconds = {timeout}\n" if timeout is not None else ""
    return (
        f'[[practices]]\nods_code = "{ods}"\nname = "Practice {ods}"\n'
        f'fhir_base_url = "{url}"\n{extra}\n'
    )
