"""The CDS Hooks HTTP app (https://cds-hooks.hl7.org/2.0/): discovery, services, feedback.

Errors answer JSON ``{"error": ...}`` with the status CDS Hooks expects: 401 for a
refused JWT, 412 when needed data was neither prefetched nor fetchable, 400 for a
malformed body, 404 for an unknown service. No access log: request lines are not
patient data here, but bodies are, and nothing of a body is ever logged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from healthy_homes.errors import CdsHooksError, HealthyHomesError
from healthy_homes.flags.cds_hooks.feedback import complete, interpret, record_locally
from healthy_homes.flags.cds_hooks.models import FeedbackRequest
from healthy_homes.flags.cds_hooks.service import CdsHooksService, parse_body

log = logging.getLogger(__name__)
JSON_TYPE = "application/json"
MAX_BODY = 2 * 1024 * 1024  # a Patient and an appointments Bundle fit many times over


def _json(text: str, status: int = 200) -> Response:
    return Response(content=text, status_code=status, media_type=JSON_TYPE)


async def _cds_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CdsHooksError)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status_code == 401 else {}
    if exc.status_code == 401:
        log.info("CDS Hooks call refused: %s", exc.message)
    return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)


def create_app(service: CdsHooksService) -> FastAPI:
    """The ASGI app around a :class:`CdsHooksService` (closed when the app shuts down)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.aclose()

    app = FastAPI(
        title="Healthy Homes CDS Hooks",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        max_body_size=MAX_BODY,
    )
    app.state.cds = service
    app.add_exception_handler(CdsHooksError, _cds_error)

    @app.get("/cds-services")
    async def discovery() -> Response:
        """The services we publish, each with its prefetch template."""
        return _json(service.discovery().wire())

    async def call(request: Request) -> Response:
        """One hook call: at most one card."""
        service_id = request.path_params["service_id"]
        caller = await service.authenticate(service_id, request.headers.get("authorization"))
        answer, shown = await service.cards(service_id, await request.body(), caller)
        if shown is not None:
            service.shown.add(shown)
        return _json(answer.wire())

    # A plain Starlette route: the hot path needs none of FastAPI's request parsing.
    app.add_route("/cds-services/{service_id}", call, methods=["POST"])

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request, background: BackgroundTasks) -> Response:
        """What the user did with our cards, into the flag lifecycle."""
        caller = await service.authenticate(
            service_id, request.headers.get("authorization"), feedback=True
        )
        body = parse_body(FeedbackRequest, await request.body(), "feedback")
        await service.shown.wait()  # the cards it names may still be being recorded
        recorded = ignored = 0
        for item in body.feedback:
            decision = interpret(service.db, item, caller)
            if decision is None:
                ignored += 1
                continue
            try:
                record_locally(service.db, decision, service.settings, service.clock)
            except HealthyHomesError as exc:  # e.g. a second, different outcome
                log.info("feedback not applied: %s", exc.message)
                ignored += 1
                continue
            recorded += 1
            background.add_task(complete, service.actions, decision, service.config.send_on_consent)
        log.info("feedback: %d recorded, %d ignored", recorded, ignored)
        return _json("{}")

    return app
