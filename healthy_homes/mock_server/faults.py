"""Fault injection: ASGI middleware that breaks matching requests at seeded rates.

Off until rules are set (``--fault``/``--faults`` on the CLI, or ``PUT /admin/faults``).
Each rule draws once per matching request from its own ``random.Random``, so the
same seed and the same request sequence give the same faults. Latency faults add
up; of the other rules, the first (in order) that fires decides the fault.

Connection resets: under uvicorn the middleware reaches the connection's asyncio
transport through the ASGI ``receive`` callable (uvicorn's request cycle), sets
``SO_LINGER`` to zero and aborts it, so the client gets a TCP RST and no response
(httpx raises a ``ReadError`` or ``RemoteProtocolError``). In process, with
``httpx.ASGITransport``, there is no socket: the middleware raises
``httpx.ReadError`` itself, which ASGITransport hands to the caller (its default
``raise_app_exceptions=True``); the app logs it once as an unexpected error.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthy_homes.mock_server import jsonio
from healthy_homes.mock_server.fault_rules import FaultConfig, FaultRule
from healthy_homes.mock_server.outcome import FhirHttpError
from healthy_homes.mock_server.routes import fhir_response

Sleep = Callable[[float], Awaitable[None]]
PageKey = tuple[tuple[str, str], ...]
_BODY_FAULTS = ("truncate", "malformed", "duplicate")


@dataclass(slots=True)
class _Armed:
    rule: FaultRule
    rng: random.Random
    matched: int = 0
    fired: int = 0


@dataclass(slots=True)
class _Plan:
    delay_ms: int = 0
    fault: _Armed | None = None
    watch: int = 0  # trailing entries of each searchset page to remember for duplicates


def _page_key(query: str) -> PageKey:
    return tuple(sorted(parse_qsl(query, keep_blank_values=True)))


class FaultInjector:
    """The fault rules of one server, their random generators and counters."""

    def __init__(self, config: FaultConfig | None = None, *, sleep: Sleep = asyncio.sleep) -> None:
        #: Awaited with the added latency in seconds; tests inject a recorder.
        self.sleep = sleep
        self._lock = threading.Lock()
        # Last entries of recent pages, by their next link's query, for duplicate faults.
        self._pages: OrderedDict[PageKey, list[Any]] = OrderedDict()
        self._page_memory = 10_000
        self._config = FaultConfig()
        self._armed: list[_Armed] = []
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        """The rules in force."""
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Replace every rule; random generators restart from their seeds."""
        seeds = [
            r.seed if r.seed is not None else f"{config.seed}/{i}"
            for i, r in enumerate(config.rules)
        ]
        armed = [_Armed(r, random.Random(s)) for r, s in zip(config.rules, seeds, strict=True)]
        with self._lock:
            self._config = config
            self._armed = armed
            self._pages.clear()

    def clear(self) -> None:
        """Switch every fault off (the seed is kept)."""
        self.configure(FaultConfig(seed=self._config.seed))

    def report(self) -> dict[str, Any]:
        """The rules with how many requests each matched and faulted."""
        with self._lock:
            rules = [
                a.rule.model_dump(mode="json") | {"matched": a.matched, "fired": a.fired}
                for a in self._armed
            ]
            return {"seed": self._config.seed, "rules": rules}

    def plan(self, method: str, path: str) -> _Plan:
        """Draw for every rule matching this request and decide its faults."""
        plan = _Plan()
        with self._lock:
            for armed in self._armed:
                rule = armed.rule
                if not rule.applies_to(method, path):
                    continue
                armed.matched += 1
                hit = armed.rng.random() < rule.rate
                if rule.kind == "duplicate":
                    plan.watch = max(plan.watch, rule.duplicate)
                if not hit:
                    continue
                if rule.kind == "latency":
                    plan.delay_ms += rule.latency_ms
                    armed.fired += 1
                elif plan.fault is None:
                    plan.fault = armed
        return plan

    def install(self, app: FastAPI) -> None:
        """Add the fault middleware (outermost so far) and ``/admin/faults`` to ``app``."""
        app.state.faults = self
        app.add_middleware(FaultMiddleware, injector=self)
        app.include_router(router)

    def fired(self, armed: _Armed) -> None:
        """Count a fault that took effect."""
        with self._lock:
            armed.fired += 1

    def rewrite_body(self, plan: _Plan, query: str, body: bytes) -> bytes:
        """Apply a body fault, and remember page ends for later duplicates."""
        fault = plan.fault
        kind = fault.rule.kind if fault is not None else None
        if plan.watch and b'"searchset"' in body:
            body = self._pages_and_duplicates(plan, query, body)
        if fault is None or kind == "duplicate" or len(body) < 2:
            return body
        self.fired(fault)
        if kind == "truncate":
            return body[: len(body) // 2]
        # A trailing comma: the classic bug of hand-rolled JSON writers.
        stripped = body.rstrip()
        return stripped[:-1] + b"," + stripped[-1:]

    def _pages_and_duplicates(self, plan: _Plan, query: str, body: bytes) -> bytes:
        try:
            bundle = jsonio.loads(body)
        except ValueError:
            return body
        entries = bundle.get("entry") or []
        key = _page_key(query)
        fault = plan.fault
        with self._lock:
            for link in bundle.get("link") or []:
                if link.get("relation") == "next" and entries:
                    self._pages[_page_key(urlsplit(link.get("url", "")).query)] = entries[
                        -plan.watch :
                    ]
                    while len(self._pages) > self._page_memory:
                        self._pages.popitem(last=False)
            previous = self._pages.get(key) if key else None
        if fault is None or fault.rule.kind != "duplicate" or not previous:
            return body
        self.fired(fault)
        bundle["entry"] = [*previous[-fault.rule.duplicate :], *entries]
        return jsonio.dumps(bundle)


def _transport(receive: Receive) -> Any:
    # uvicorn passes its RequestResponseCycle.receive, bound to the cycle that owns
    # the connection's transport; middleware in front of this one must not wrap it.
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return None
    return transport


async def _reset(receive: Receive) -> None:
    transport = _transport(receive)
    if transport is None:
        raise httpx.ReadError("connection reset by peer (injected fault)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let connection_lost run, so uvicorn sees a disconnect rather than an app that
    # returned without answering (which it would log and answer with a 500).
    for _ in range(3):
        await asyncio.sleep(0)


async def _discard(message: Message) -> None:
    return None


class FaultMiddleware:
    """ASGI middleware applying a :class:`FaultInjector`'s rules."""

    def __init__(self, app: ASGIApp, *, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Delay, answer, reset or rewrite the request as the rules decide."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        plan = self.injector.plan(scope["method"], scope["path"])
        if plan.delay_ms:
            await self.injector.sleep(plan.delay_ms / 1000)
        fault = plan.fault
        kind = fault.rule.kind if fault is not None else None
        if fault is not None and kind == "status":
            self.injector.fired(fault)
            await _status_response(fault.rule)(scope, receive, send)
        elif fault is not None and kind == "reset":
            if fault.rule.after:
                await self.app(scope, receive, _discard)
            self.injector.fired(fault)
            await _reset(receive)
        elif kind in _BODY_FAULTS or plan.watch:
            await self._rewritten(scope, receive, send, plan)
        else:
            await self.app(scope, receive, send)

    async def _rewritten(self, scope: Scope, receive: Receive, send: Send, plan: _Plan) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:
                await send(message)

        await self.app(scope, receive, capture)
        if start is None:
            return
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if body and any(k.lower() == b"content-type" and b"json" in v for k, v in headers):
            query = scope.get("query_string", b"").decode("latin-1")
            body = self.injector.rewrite_body(plan, query, body)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _status_response(rule: FaultRule) -> Any:
    headers = {}
    retry_after = rule.header_retry_after()
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    try:
        phrase = HTTPStatus(rule.status).phrase.lower()
    except ValueError:
        phrase = "error"
    error = FhirHttpError(rule.status, f"{phrase} (injected fault)", headers=headers)
    return fhir_response(error.outcome(), error.status, error.headers)


router = APIRouter(prefix="/admin/faults", tags=["admin"])


def injector_of(app: FastAPI) -> FaultInjector:
    """The fault injector installed on ``app``."""
    injector: FaultInjector = app.state.faults
    return injector


@router.get("")
async def get_faults(request: Request) -> JSONResponse:
    """The rules in force, with counters."""
    return JSONResponse(injector_of(request.app).report())


@router.put("")
async def put_faults(request: Request) -> JSONResponse:
    """Replace the rules: ``{"seed": 7, "rules": ["Condition:status=503,rate=0.2", ...]}``."""
    try:
        config = FaultConfig.model_validate_json(await request.body())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise FhirHttpError(400, f"fault config: {problems}") from None
    injector = injector_of(request.app)
    injector.configure(config)
    return JSONResponse(injector.report())


@router.delete("")
async def delete_faults(request: Request) -> JSONResponse:
    """Switch every fault off."""
    injector = injector_of(request.app)
    injector.clear()
    return JSONResponse(injector.report())
