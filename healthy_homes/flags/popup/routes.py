"""The page, its event stream, and the clinician's actions (JSON, CSRF-protected)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from healthy_homes.consent.wording import consent_wording
from healthy_homes.errors import FlagStateError, HealthyHomesError
from healthy_homes.flags.popup import api, referrals
from healthy_homes.flags.popup.forms import form_items
from healthy_homes.flags.popup.state import NotSignedIn, actions_of, clinician_of, state_of
from healthy_homes.web import sse
from healthy_homes.web.access import Role, access_of, require_role
from healthy_homes.web.templating import render


async def page(request: Request) -> Response:
    """The pop-up page: today's flagged arrivals, and the dialog they open."""
    state = state_of(request)
    try:
        clinician = clinician_of(request)
    except NotSignedIn:
        return render(state.env, request, "popup/signed-out.html", status_code=401)
    version = actions_of(request).wording_version
    context = {
        "pageTitle": "Housing referral prompts",
        "clinician": clinician,
        "practice": state.config.practice,
        "service": state.config.service,
        "prompts": [p.for_page() for p in state.board.visible_to(clinician)],
        "health": state.board.health,
        "wording": consent_wording(state.config.service.name, version),
        "wordingVersion": version,
        "items": form_items(),
    }
    return render(state.env, request, "popup/page.html", context)


async def events(request: Request) -> Response:
    """Server-Sent Events: a snapshot, then arrivals, resolutions and health changes."""
    state = state_of(request)
    subscriber = state.board.subscribe(clinician_of(request))
    heartbeat = state.config.heartbeat_seconds

    access = access_of(request)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in sse.stream(subscriber.queue, heartbeat_seconds=heartbeat):
                # Signed out, disabled or timed out since the stream opened: no more data.
                if not access.still_signed_in(request):
                    break
                yield chunk
        finally:
            state.board.unsubscribe(subscriber)

    return StreamingResponse(body(), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    return _error(401, "You are not signed in.")


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return _error(400, message[:1].upper() + message[1:])


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HealthyHomesError)
    if isinstance(exc, FlagStateError):
        return _error(409, "This prompt has already been dealt with.")
    # The message carries practice or referral context only, never the patient.
    status = 503 if exc.retryable else 409
    return _error(status, exc.message)


def install_routes(app: FastAPI) -> None:
    """Add the page, the stream and the action endpoints."""
    clinician = [Depends(require_role(Role.CLINICIAN))]
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False, dependencies=clinician)
    app.add_api_route(
        "/events", events, methods=["GET"], include_in_schema=False, dependencies=clinician
    )
    app.include_router(api.router)
    app.include_router(referrals.router)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HealthyHomesError, _domain_error)
