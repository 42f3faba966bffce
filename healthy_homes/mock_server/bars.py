"""A stand-in NHS BaRS receiver: ``POST /fhir/$process-message`` and replies to poll.

Install with ``create_app(mode="housing", extensions=[BarsReceiver()])``; the state is
``app.state.bars`` (:func:`bars_of`).

- A request needs ``X-Request-Id``; one already seen answers 409 (OperationOutcome
  ``duplicate``), as BaRS receivers do. ``X-Correlation-Id`` is echoed and keeps the
  conversation together.
- The Bundle must be a ``message`` whose first entry is a MessageHeader with an
  eventCoding from the BaRS message-events system and a focus that resolves to a
  ServiceRequest in the Bundle; otherwise 400/422.
- ``servicerequest-request`` with reason ``new`` stores the referral once per
  ServiceRequest identifier; reason ``delete`` revokes it (only while active).
- Each accepted request answers 200 with a ``servicerequest-response`` message
  (a Task carries the status) and keeps it, with later ones made through
  ``POST /admin/bars/{referral}/status {"status": ..., "reason"?: ...}``, for
  ``GET /fhir/bars/responses?correlation_id=...`` (a searchset of response messages, oldest
  first). Polling rather than pushing keeps tests deterministic; a real receiver
  posts the same messages to ``MessageHeader.source.endpoint``.

Nothing here imports the connector or the domain packages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from healthy_homes.mock_server import jsonio
from healthy_homes.mock_server.outcome import FhirHttpError
from healthy_homes.mock_server.routes import fhir_response

EVENTS = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
REASONS = "https://fhir.nhs.uk/CodeSystem/message-reason-bars"
JSON = dict[str, Any]


@dataclass
class BarsReferral:
    """One referral the receiver holds."""

    key: str
    correlation_id: str
    service_request: JSON
    status: str = "received"


@dataclass
class BarsState:
    """What the receiver has seen and said."""

    request_ids: set[str] = field(default_factory=set)
    referrals: dict[str, BarsReferral] = field(default_factory=dict)
    responses: list[tuple[str, JSON]] = field(default_factory=list)  # (correlation id, message)
    requests: list[JSON] = field(default_factory=list)
    #: (X-Request-Id, X-Correlation-Id) of every request, duplicates included.
    headers: list[tuple[str, str]] = field(default_factory=list)

    def respond(self, referral: BarsReferral, status: str, reason: str | None, to: str) -> JSON:
        """Record a servicerequest-response for ``referral`` and return it."""
        referral.status = status
        task: JSON = {
            "resourceType": "Task",
            "status": status,
            "intent": "order",
            "identifier": referral.service_request.get("identifier", []),
            "focus": {"reference": "urn:uuid:sr"},
        }
        if reason:
            task["statusReason"] = {"text": reason}
        now = datetime.now(UTC).isoformat()
        message: JSON = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "message",
            "timestamp": now,
            "entry": [
                {
                    "fullUrl": "urn:uuid:mh",
                    "resource": {
                        "resourceType": "MessageHeader",
                        "eventCoding": {"system": EVENTS, "code": "servicerequest-response"},
                        "source": {"endpoint": "urn:mock-housing"},
                        "response": {"identifier": to, "code": "ok"},
                        "focus": [{"reference": "urn:uuid:sr"}],
                    },
                },
                {"fullUrl": "urn:uuid:sr", "resource": referral.service_request},
                {"fullUrl": "urn:uuid:task", "resource": task},
            ],
        }
        self.responses.append((referral.correlation_id, message))
        return message


def bars_of(app: FastAPI) -> BarsState:
    """The BaRS receiver state of ``app``."""
    state: BarsState = app.state.bars
    return state


def _header(bundle: JSON) -> JSON:
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "message":
        raise FhirHttpError(400, "expected a Bundle of type message")
    entries = bundle.get("entry") or []
    first = (entries[0].get("resource") if entries else None) or {}
    if first.get("resourceType") != "MessageHeader":
        raise FhirHttpError(400, "the first entry must be a MessageHeader")
    event = first.get("eventCoding") or {}
    if event.get("system") != EVENTS:
        raise FhirHttpError(422, f"eventCoding.system must be {EVENTS}")
    return first


def _focus(bundle: JSON, header: JSON) -> JSON:
    wanted = {f.get("reference") for f in header.get("focus") or []}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if entry.get("fullUrl") in wanted and resource.get("resourceType") == "ServiceRequest":
            return dict(resource)
    raise FhirHttpError(422, "MessageHeader.focus must resolve to a ServiceRequest in the Bundle")


router = APIRouter()


@router.post("/fhir/$process-message")
async def process_message(request: Request) -> Response:
    """Take a BaRS message; 409 for an X-Request-Id seen before."""
    state = bars_of(request.app)
    request_id = request.headers.get("x-request-id")
    correlation = request.headers.get("x-correlation-id") or str(uuid.uuid4())
    echo = {"X-Correlation-Id": correlation}
    state.headers.append((request_id or "", correlation))
    if not request_id:
        raise FhirHttpError(400, "X-Request-Id header is required", headers=echo)
    if request_id in state.request_ids:
        raise FhirHttpError(409, "duplicate X-Request-Id", code="duplicate", headers=echo)
    bundle = jsonio.loads(await request.body())
    header = _header(bundle)
    if header["eventCoding"].get("code") != "servicerequest-request":
        raise FhirHttpError(422, "only servicerequest-request is accepted here", headers=echo)
    service_request = _focus(bundle, header)
    identifiers = service_request.get("identifier") or [{}]
    key = str(identifiers[0].get("value") or "")
    reason = ((header.get("reason") or {}).get("coding") or [{}])[0].get("code", "new")
    state.request_ids.add(request_id)
    state.requests.append(bundle)
    referral = state.referrals.get(key)
    if reason == "delete":
        if referral is None:
            raise FhirHttpError(404, "no such referral", headers=echo)
        if referral.service_request.get("status") == "active":
            referral.service_request["status"] = "revoked"
        reply = state.respond(referral, "cancelled", "cancelled by sender", str(bundle.get("id")))
    else:
        if referral is None:  # a new request id for a referral it holds stores nothing new
            referral = BarsReferral(key, correlation, service_request)
            state.referrals[key] = referral
        reply = state.respond(referral, referral.status, None, str(bundle.get("id")))
    return fhir_response(reply, 200, echo)


@router.post("/admin/bars/{key}/status")
async def change_status(request: Request, key: str) -> Response:
    """The housing team moves a referral: ``{"status": "accepted", "reason"?: ...}``."""
    state = bars_of(request.app)
    referral = state.referrals.get(key)
    if referral is None:
        raise FhirHttpError(404, "no such referral")
    body = jsonio.loads(await request.body())
    reply = state.respond(referral, str(body["status"]), body.get("reason"), "admin")
    return fhir_response(reply, 200)


@router.get("/fhir/bars/responses")
async def responses(request: Request, correlation_id: str) -> Response:
    """Response messages of one conversation, oldest first."""
    state = bars_of(request.app)
    found = [m for c, m in state.responses if c == correlation_id]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [{"resource": m} for m in found],
    }
    return fhir_response(bundle, 200)


@dataclass(frozen=True)
class BarsReceiver:
    """App extension: a BaRS ``$process-message`` endpoint over its own state."""

    def install(self, app: FastAPI) -> None:
        """Add the routes; the state is ``app.state.bars``."""
        app.state.bars = BarsState()
        app.include_router(router)
