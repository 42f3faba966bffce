"""ServerThread, the pytest fixtures and the CLI, over real loopback HTTP."""

from __future__ import annotations

import argparse
import contextlib
import io
import threading

import httpx
from fastapi import FastAPI

from healthy_homes.cli import build_parser
from healthy_homes.mock_server import cli
from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.serving import ServerThread


def test_server_thread_serves_any_asgi_app_and_stops() -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    server = ServerThread(app)
    with server as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert httpx.get(f"{url}/ping").json() == {"pong": "yes"}
    try:
        httpx.get(f"{url}/ping", timeout=2)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("server still answering after stop()")


def test_mock_fhir_server_fixture(mock_fhir_server: RunningMockServer) -> None:
    assert mock_fhir_server.base_url.endswith("/fhir")
    r = httpx.get(f"{mock_fhir_server.base_url}/Patient", params={"_summary": "count"})
    assert r.json()["total"] == 300 == mock_fhir_server.store.count("Patient")


def test_factory_gives_independent_servers(mock_fhir_factory) -> None:  # type: ignore[no-untyped-def]
    small = mock_fhir_factory(patients=20, seed=1)
    inbox = mock_fhir_factory(mode="housing")
    assert small.base_url != inbox.base_url
    assert (
        httpx.get(f"{small.base_url}/Patient", params={"_summary": "count"}).json()["total"] == 20
    )
    assert httpx.get(f"{inbox.base_url}/Patient", params={"_summary": "count"}).json()["total"] == 0
    meta = httpx.get(f"{inbox.base_url}/metadata").json()
    assert "housing" in meta["implementation"]["description"]


class _Banner(io.TextIOBase):
    """Stdout for the serving thread: remembers the text, signals the 'FHIR base' line."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = threading.Event()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.text += text
            if "FHIR base" in self.text and self.text.endswith("\n"):
                self.shown.set()
        return len(text)


def test_cli_registers_mock_server_and_serves_until_stopped() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mock-server", "--patients", "25", "--port", "0"])
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(cli.run(args, stop)))
    # Not capsys: reading and truncating its buffer while the thread prints can drop
    # the very line waited for, and the wait never ended.
    banner = _Banner()
    with contextlib.redirect_stdout(banner):
        thread.start()
        try:
            assert banner.shown.wait(120), f"no 'FHIR base' line; printed: {banner.text!r}"
            line = next(ln for ln in banner.text.splitlines() if "FHIR base" in ln)
            base = line.split()[-1]
            count = httpx.get(f"{base}/Patient", params={"_summary": "count"}).json()
            assert count["total"] == 25
        finally:
            stop.set()
            thread.join()
    assert result == [0]


def test_cli_is_wired_into_the_main_parser() -> None:
    parser = build_parser()
    args = parser.parse_args(["mock-server", "--patients", "10", "--seed", "3"])
    assert args.handler is cli.run and args.patients == 10 and args.seed == 3
