"""Run any ASGI app with uvicorn in a background thread, for tests, demos and the CLI.

The listening socket is bound (and listening) before the server thread starts, so the
port is known at once and :meth:`ServerThread.start` returns only after uvicorn's
startup (lifespan included) has finished.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["ServerThread"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """A uvicorn server that reports the end of its startup through an event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class ServerThread:
    """An ASGI app served on a loopback port by uvicorn in a daemon thread.

    ``port=0`` picks a free port. Access logging is off: request lines carry search
    parameters, which may be patient identifiers.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._log_level = log_level
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The root URL, ``http://HOST:PORT``; valid once started."""
        if self._socket is None:
            raise RuntimeError("server not started")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Start serving; return the root URL once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this. Without it, uvicorn's separate header and
        # body writes meet Nagle and delayed ACKs: 40 ms for every response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            access_log=False,
            # uvicorn's own handlers would bypass ours: its records go to the root logger,
            # through the redaction filter and in the chosen format (healthy_homes/logs.py).
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = _Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._run, name=f"asgi-server-{self.port}", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"server on port {self.port} did not start in time")
        if self._error is not None or not server.started:
            self.stop()
            raise RuntimeError(f"server on port {self.port} failed to start") from self._error
        return self.url

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported to start(); SystemExit on startup failure
            self._error = exc
            self._server.ready.set()

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(_STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
