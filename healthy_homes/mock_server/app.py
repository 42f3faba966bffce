"""The mock FHIR server's ASGI app.

Hook points for later features (fault injection, bulk export, SMART auth, housing
timelines): pass ``middleware`` (Starlette ``Middleware``), ``routers`` or
``extensions`` (anything with ``install(app)``) to :func:`create_app`, an ``auth``
object that also supplies ``middleware()``, or subscribe to writes with
``app.state.store.add_listener``. An extension that adds interactions appends a
callable to ``app.state.capability_hooks`` to amend the CapabilityStatement.
Extension routes are installed before the FHIR routes, so
``/fhir/Group/{id}/$export`` wins over ``/fhir/{type}/{id}``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from healthy_homes.clock import Clock
from healthy_homes.mock_server.extensions import with_defaults
from healthy_homes.mock_server.outcome import FhirHttpError, operation_outcome
from healthy_homes.mock_server.routes import FHIR_BASE, fhir_response, router
from healthy_homes.mock_server.store import MockStore

log = logging.getLogger(__name__)

Mode = Literal["practice", "housing"]


class AppExtension(Protocol):
    """Adds routes (and anything else) to the app before the FHIR routes."""

    def install(self, app: FastAPI) -> None:
        """Add routes, state or startup hooks to ``app``."""
        ...


class AuthExtension(AppExtension, Protocol):
    """An extension that also guards every request with a middleware."""

    def middleware(self) -> Middleware:
        """The middleware to wrap the app with."""
        ...


def _error_response(exc: FhirHttpError) -> Response:
    return fhir_response(exc.outcome(), exc.status, exc.headers)


async def _fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirHttpError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    text = {404: "no such endpoint", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    headers = dict(exc.headers or {})
    return _error_response(FhirHttpError(exc.status_code, text, headers=headers))


async def _validation_error(request: Request, exc: Exception) -> Response:
    return _error_response(FhirHttpError(400, "malformed request"))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Only the type: the message could echo request content (patient data).
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    body = operation_outcome("fatal", "exception", "internal server error")
    return fhir_response(body, 500)


def create_app(
    store: MockStore | None = None,
    *,
    mode: Mode = "practice",
    clock: Clock | None = None,
    middleware: Sequence[Middleware] = (),
    routers: Sequence[APIRouter] = (),
    extensions: Sequence[AppExtension] = (),
    auth: AuthExtension | None = None,
) -> FastAPI:
    """A FHIR R4 server at ``/fhir`` over ``store`` (a new empty one by default)."""
    if mode not in ("practice", "housing"):
        raise ValueError(f"unknown mode {mode!r}")
    if store is None:
        store = MockStore(clock)
    elif clock is not None:
        store.clock = clock
    app = FastAPI(
        title="Healthy Homes mock FHIR server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=[*middleware, *([auth.middleware()] if auth is not None else [])],
    )
    app.state.store = store
    app.state.mode = mode
    app.state.fhir_base = FHIR_BASE
    #: Callables that amend the CapabilityStatement dict for what an extension adds.
    app.state.capability_hooks = []
    app.add_exception_handler(FhirHttpError, _fhir_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    if auth is not None:
        auth.install(app)
    # Bulk export, /admin/load, fault injection and (housing mode) Task timelines.
    for extension in with_defaults(mode, extensions):
        extension.install(app)
    for extra in routers:
        app.include_router(extra)
    app.include_router(router)
    return app
