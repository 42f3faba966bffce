"""The FHIR REST routes under ``/fhir``: HTTP in, interactions, FHIR JSON out."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from healthy_homes.mock_server import interactions, jsonio
from healthy_homes.mock_server.bundles import process_bundle
from healthy_homes.mock_server.capability import capability_statement
from healthy_homes.mock_server.fhirdates import format_instant, from_us
from healthy_homes.mock_server.outcome import FHIR_JSON, FhirHttpError, operation_outcome
from healthy_homes.mock_server.store import MockStore, Version

FHIR_BASE = "/fhir"
MEDIA_TYPE = f"{FHIR_JSON}; charset=utf-8"

router = APIRouter(prefix=FHIR_BASE)


def base_url(request: Request) -> str:
    """The absolute FHIR base of this request, e.g. ``http://127.0.0.1:8080/fhir``."""
    return str(request.base_url).rstrip("/") + FHIR_BASE


def _store(request: Request) -> MockStore:
    store: MockStore = request.app.state.store
    return store


def fhir_response(
    body: bytes | dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response with the FHIR JSON media type."""
    content = b"" if body is None else body if isinstance(body, bytes) else jsonio.dumps(body)
    return Response(content, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _version_headers(version: Version, base: str, *, location: bool) -> dict[str, str]:
    headers = {
        "ETag": version.etag,
        "Last-Modified": format_datetime(from_us(version.ts), usegmt=True),
    }
    if location:
        url = f"{base}/{version.type}/{version.id}/_history/{version.version}"
        headers["Location"] = url
        headers["Content-Location"] = url
    return headers


def _prefer(request: Request) -> dict[str, str]:
    prefs = {}
    for part in request.headers.get("prefer", "").replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            prefs[key.lower()] = value.strip().strip('"')
    return prefs


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type:
        raise FhirHttpError(415, f"content type {content_type.split(';')[0]} is not supported")
    raw = await request.body()
    try:
        return jsonio.loads(raw)
    except ValueError:
        raise FhirHttpError(400, "request body is not valid JSON") from None


def _written(request: Request, written: interactions.Written) -> Response:
    base = base_url(request)
    headers = _version_headers(written.version, base, location=True)
    wanted = _prefer(request).get("return", "representation")
    if wanted == "minimal":
        return fhir_response(None, written.status, headers)
    if wanted == "OperationOutcome":
        text = f"{written.version.reference} stored as version {written.version.version}"
        return fhir_response(operation_outcome("information", "informational", text), 200, headers)
    return fhir_response(written.version.body, written.status, headers)


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """The CapabilityStatement."""
    store = _store(request)
    now = format_instant(store.snapshot_time())
    statement = capability_statement(base_url(request), request.app.state.mode, now)
    # Extensions (bulk export, auth, ...) describe what they add, so it stays truthful.
    for hook in getattr(request.app.state, "capability_hooks", ()):
        hook(statement)
    return fhir_response(statement)


@router.post("")
@router.post("/")
async def bundle(request: Request) -> Response:
    """Transaction or batch."""
    body = await _json_body(request)
    result = process_bundle(_store(request), body, base_url=base_url(request))
    return fhir_response(result)


async def _search(request: Request, pairs: list[tuple[str, str]]) -> Response:
    lenient = _prefer(request).get("handling") == "lenient"
    body = interactions.search(
        _store(request),
        request.path_params["type"],
        pairs,
        base_url=base_url(request),
        self_url=str(request.url),
        lenient=lenient,
    )
    return fhir_response(body)


@router.get("/{type}")
async def search_get(request: Request) -> Response:
    """Search by GET."""
    return await _search(request, list(request.query_params.multi_items()))


@router.post("/{type}/_search")
async def search_post(request: Request) -> Response:
    """Search by POST with a form body (parameters may also be in the URL)."""
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" not in content_type:
        raise FhirHttpError(415, "POST _search takes application/x-www-form-urlencoded")
    form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    return await _search(request, [*request.query_params.multi_items(), *form])


@router.post("/{type}")
async def create(request: Request) -> Response:
    """Create, or conditional create with ``If-None-Exist``."""
    body = await _json_body(request)
    written = interactions.create(
        _store(request),
        request.path_params["type"],
        body,
        base_url=base_url(request),
        if_none_exist=request.headers.get("if-none-exist"),
    )
    return _written(request, written)


@router.get("/{type}/{id}")
async def read(request: Request) -> Response:
    """Read the current version."""
    version = interactions.read(
        _store(request), request.path_params["type"], request.path_params["id"]
    )
    return fhir_response(version.body, 200, _version_headers(version, "", location=False))


@router.put("/{type}/{id}")
async def update(request: Request) -> Response:
    """Update (or create with the client's id), honouring ``If-Match``."""
    body = await _json_body(request)
    written = interactions.update(
        _store(request),
        request.path_params["type"],
        request.path_params["id"],
        body,
        if_match=request.headers.get("if-match"),
    )
    return _written(request, written)


@router.delete("/{type}/{id}")
async def delete(request: Request) -> Response:
    """Delete."""
    interactions.delete(_store(request), request.path_params["type"], request.path_params["id"])
    return Response(status_code=204)


@router.get("/{type}/{id}/_history/{vid}")
async def vread(request: Request) -> Response:
    """Read one version."""
    p = request.path_params
    version = interactions.vread(_store(request), p["type"], p["id"], p["vid"])
    return fhir_response(version.body, 200, _version_headers(version, "", location=False))
