"""FHIR Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html), ndjson output.

Kick-off at ``[base]/$export``, ``[base]/Patient/$export`` or
``[base]/Group/[id]/$export`` with ``Prefer: respond-async`` answers 202 and a status
URL. The export reads the store as of the snapshot taken at kick-off, so writes made
while it runs are not in it and ``transactionTime`` is exact. A job completes after
``polls`` status requests (0: at the first). Group members are the Group's active
``member`` entries; with ``_since`` a Group export also returns older resources of
members whose ``member.period.start`` is on or after ``_since``, as the spec allows.
"""

from __future__ import annotations

import bisect
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from healthy_homes.mock_server import interactions, jsonio
from healthy_homes.mock_server.auth import RequireBearer
from healthy_homes.mock_server.fhirdates import MAX_US, DateFormatError, format_instant, parse_range
from healthy_homes.mock_server.outcome import FhirHttpError, operation_outcome
from healthy_homes.mock_server.paging import SUBSETTED
from healthy_homes.mock_server.params import SEARCH_PARAMS
from healthy_homes.mock_server.query import MAX_COUNT, Query, QueryError, parse_query
from healthy_homes.mock_server.routes import FHIR_BASE, base_url, fhir_response
from healthy_homes.mock_server.search import run_page
from healthy_homes.mock_server.store import MockStore

NDJSON = "application/fhir+ndjson"
_FORMATS = frozenset({NDJSON, "application/ndjson", "ndjson"})
_PARAMS = frozenset({"_outputFormat", "_since", "_type", "_elements", "_typeFilter"})
#: Types in the Patient compartment, with the parameter naming their patient.
COMPARTMENT = {
    t: p for t, ps in SEARCH_PARAMS.items() if (p := ps.get("patient")) and "Patient" in p.targets
}
_BULK = "http://hl7.org/fhir/uv/bulkdata"
_FILTER_SPLIT = re.compile(r",(?=[A-Z][A-Za-z]+\?)")


@dataclass(slots=True)
class ExportJob:
    """One kicked-off export."""

    id: str
    request: str
    base: str
    group_id: str | None
    types: tuple[str, ...]
    since_us: int | None
    elements: tuple[str, ...]
    filters: dict[str, list[Query]]
    snapshot: int
    transaction_us: int
    requires_token: bool
    polls: int
    polled: int = 0
    outputs: dict[str, list[int]] | None = None


class BulkExports:
    """The export jobs of one server; ``polls`` status requests before each completes."""

    def __init__(self, *, polls: int = 0, retry_after: int = 1) -> None:
        self.polls = polls
        self.retry_after = retry_after
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def install(self, app: FastAPI) -> None:
        """Serve bulk export (before the FHIR routes, so ``$export`` is not a type)."""
        app.state.bulk = self
        app.include_router(router)
        app.state.capability_hooks.append(_describe)

    def add(self, job: ExportJob) -> None:
        """Keep a new job."""
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> ExportJob:
        """A job, or 404."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise FhirHttpError(404, "no such export (finished with, cancelled or never started)")
        return job

    def cancel(self, job_id: str) -> None:
        """Forget a job; 404 if there is none."""
        with self._lock:
            if self._jobs.pop(job_id, None) is None:
                raise FhirHttpError(404, "no such export")


def _describe(statement: dict[str, Any]) -> None:
    """Say in the CapabilityStatement that the export operations are served."""
    statement.setdefault("instantiates", []).append(f"{_BULK}/CapabilityStatement/bulk-data")
    rest = statement["rest"][0]
    rest.setdefault("operation", []).append(
        {"name": "export", "definition": f"{_BULK}/OperationDefinition/export"}
    )
    for resource in rest["resource"]:
        name = {"Patient": "patient-export", "Group": "group-export"}.get(resource["type"])
        if name:
            resource.setdefault("operation", []).append(
                {"name": "export", "definition": f"{_BULK}/OperationDefinition/{name}"}
            )


def exports_of(app: FastAPI) -> BulkExports:
    """The export jobs of ``app``."""
    exports: BulkExports = app.state.bulk
    return exports


def _split(values: list[str]) -> list[str]:
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()]


def _job(request: Request, group_id: str | None) -> ExportJob:
    prefer = request.headers.get("prefer", "")
    if "respond-async" not in prefer:
        raise FhirHttpError(400, "bulk export needs the header 'Prefer: respond-async'")
    lenient = "handling=lenient" in prefer.replace(" ", "")
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in _PARAMS and not lenient:
            raise FhirHttpError(400, f"bulk export does not support the parameter {key}")
        params.setdefault(key, []).append(value)
    fmt = params.get("_outputFormat", [NDJSON])[-1]
    if fmt not in _FORMATS:
        raise FhirHttpError(400, f"_outputFormat {fmt} is not supported; use {NDJSON}")
    since = None
    if "_since" in params:
        try:
            since = parse_range(params["_since"][-1])[0]
        except DateFormatError:
            raise FhirHttpError(400, "_since is not a FHIR instant") from None
    patient_level = group_id is not None or request.url.path.endswith("/Patient/$export")
    allowed = ("Patient", *COMPARTMENT) if patient_level else tuple(SEARCH_PARAMS)
    types = tuple(dict.fromkeys(_split(params.get("_type", [])))) or allowed
    for type_ in types:
        if type_ not in allowed:
            where = "in the Patient compartment" if patient_level else "supported"
            raise FhirHttpError(400, f"_type {type_} is not {where}")
    base = base_url(request)
    filters: dict[str, list[Query]] = {}
    for text in (f for raw in params.get("_typeFilter", []) for f in _FILTER_SPLIT.split(raw)):
        type_, _, query = text.partition("?")
        if type_ not in types:
            raise FhirHttpError(400, f"_typeFilter names {type_!r}, which is not exported")
        try:
            parsed = parse_query(type_, parse_qsl(query, keep_blank_values=True), base_url=base)
        except QueryError as exc:
            raise FhirHttpError(exc.status, f"_typeFilter: {exc}") from None
        parsed.count = MAX_COUNT
        filters.setdefault(type_, []).append(parsed)
    store: MockStore = request.app.state.store
    with store.lock:
        if group_id is not None:
            interactions.read(store, "Group", group_id)
        snapshot, now = store.snapshot(), store.snapshot_time()
    requires_token = any(m.cls is RequireBearer for m in request.app.user_middleware)
    exports = exports_of(request.app)
    return ExportJob(
        id=uuid.uuid4().hex,
        request=str(request.url),
        base=base,
        group_id=group_id,
        types=types,
        since_us=since,
        elements=tuple(_split(params.get("_elements", []))),
        filters=filters,
        snapshot=snapshot,
        transaction_us=now,
        requires_token=requires_token,
        polls=exports.polls,
    )


def _members(store: MockStore, job: ExportJob) -> dict[str, bool]:
    """``Patient/id`` of each active member, and whether it may have joined since ``_since``."""
    group = store.version_at("Group", job.group_id or "", job.snapshot)
    out: dict[str, bool] = {}
    for member in (group.resource().get("member") or []) if group else []:
        ref = (member.get("entity") or {}).get("reference", "")
        period = member.get("period") or {}
        if member.get("inactive") or not ref.startswith("Patient/"):
            continue
        if _bound(period.get("end"), 1, None) <= job.transaction_us:
            continue
        # A date-only start ("2026-04-01") counts if any of that day is on or after _since.
        latest_start = _bound(period.get("start"), 1, 0)
        out[ref] = job.since_us is not None and latest_start > job.since_us
    return out


def _bound(value: Any, side: int, missing: int | None) -> int:
    """One end of a dateTime's range; ``missing`` (None: unbounded) if absent or invalid."""
    try:
        return parse_range(value)[side] if isinstance(value, str) else _unbounded(missing)
    except DateFormatError:
        return _unbounded(missing)


def _unbounded(missing: int | None) -> int:
    return MAX_US if missing is None else missing


def _filtered(store: MockStore, job: ExportJob, type_: str) -> set[int] | None:
    if type_ not in job.filters:
        return None
    seqs: set[int] = set()
    for query in job.filters[type_]:
        cursor = None
        while True:
            page = run_page(store, query, snapshot=job.snapshot, cursor=cursor)
            seqs.update(v.seq for v in page.matches)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return seqs


def _select(
    store: MockStore, job: ExportJob, type_: str, members: dict[str, bool] | None
) -> list[int]:
    since = job.since_us
    chosen: list[int] = []
    if members is None:
        seqs = store.type_seqs(type_)
        start = 0 if since is None else bisect.bisect_left(seqs, store.first_seq_at_or_after(since))
        for seq in seqs[start:]:
            if seq > job.snapshot:
                break
            if store.record(seq).visible_at(job.snapshot):
                chosen.append(seq)
    else:
        for ref, joined in members.items():
            if type_ == "Patient":
                found = store.version_at("Patient", ref.partition("/")[2], job.snapshot)
                candidates = [found.seq] if found else []
            else:
                candidates = list(store.lookup(type_, COMPARTMENT[type_].paths, ref))
            for seq in candidates:
                version = store.record(seq)
                if version.visible_at(job.snapshot) and (
                    joined or since is None or version.ts >= since
                ):
                    chosen.append(seq)
        chosen = sorted(set(chosen))
    wanted = _filtered(store, job, type_)
    return chosen if wanted is None else [s for s in chosen if s in wanted]


def _complete(store: MockStore, job: ExportJob) -> dict[str, list[int]]:
    with store.lock:
        members = _members(store, job) if job.group_id is not None else None
        outputs = {t: _select(store, job, t, members) for t in job.types}
    return {t: seqs for t, seqs in outputs.items() if seqs}


def _subset(body: bytes, type_: str, elements: tuple[str, ...]) -> bytes:
    keep = {"resourceType", "id", "meta"}
    for element in elements:
        owner, dot, name = element.partition(".")
        if not dot:
            keep.add(element)
        elif owner == type_:
            keep.add(name)
    resource = jsonio.loads(body)
    out = {k: v for k, v in resource.items() if k in keep}
    out["meta"] = {
        **(out.get("meta") or {}),
        "tag": [*out.get("meta", {}).get("tag", []), SUBSETTED],
    }
    return jsonio.dumps(out)


def _lines(
    store: MockStore, seqs: list[int], type_: str, elements: tuple[str, ...]
) -> Iterator[bytes]:
    for i in range(0, len(seqs), 500):
        chunk = []
        for seq in seqs[i : i + 500]:
            body = store.record(seq).body
            chunk.append(_subset(body, type_, elements) if elements else body)
        yield b"\n".join(chunk) + b"\n"


router = APIRouter(prefix=FHIR_BASE, tags=["bulk"])


def _accepted(request: Request, job: ExportJob) -> Response:
    exports_of(request.app).add(job)
    body = operation_outcome("information", "informational", "export started")
    headers = {"Content-Location": f"{job.base}/$export-status/{job.id}"}
    return fhir_response(body, 202, headers)


@router.get("/$export")
async def export_system(request: Request) -> Response:
    """System-level export kick-off."""
    return _accepted(request, _job(request, None))


@router.get("/Patient/$export")
async def export_patients(request: Request) -> Response:
    """Patient-level export kick-off."""
    return _accepted(request, _job(request, None))


@router.get("/Group/{group_id}/$export")
async def export_group(request: Request, group_id: str) -> Response:
    """Group-level export kick-off."""
    return _accepted(request, _job(request, group_id))


@router.get("/$export-status/{job_id}")
async def export_status(request: Request, job_id: str) -> Response:
    """202 while running, then the manifest."""
    exports = exports_of(request.app)
    job = exports.get(job_id)
    if job.polled < job.polls:
        job.polled += 1
        headers = {
            "X-Progress": f"in progress ({job.polled} of {job.polls} polls)",
            "Retry-After": str(exports.retry_after),
        }
        return Response(status_code=202, headers=headers)
    if job.outputs is None:
        job.outputs = _complete(request.app.state.store, job)
    manifest: dict[str, Any] = {
        "transactionTime": format_instant(job.transaction_us),
        "request": job.request,
        "requiresAccessToken": job.requires_token,
        "output": [
            {"type": t, "url": f"{job.base}/$export-output/{job.id}/{t}.ndjson", "count": len(s)}
            for t, s in job.outputs.items()
        ],
        "error": [],
    }
    return JSONResponse(manifest)


@router.delete("/$export-status/{job_id}")
async def export_cancel(request: Request, job_id: str) -> Response:
    """Cancel a job (or forget a finished one)."""
    exports_of(request.app).cancel(job_id)
    return fhir_response(operation_outcome("information", "informational", "export deleted"), 202)


@router.get("/$export-output/{job_id}/{name}")
async def export_output(request: Request, job_id: str, name: str) -> Response:
    """One ndjson output file."""
    job = exports_of(request.app).get(job_id)
    type_ = name.removesuffix(".ndjson")
    if job.outputs is None or type_ not in job.outputs or not name.endswith(".ndjson"):
        raise FhirHttpError(404, "no such output file")
    store: MockStore = request.app.state.store
    return StreamingResponse(
        _lines(store, job.outputs[type_], type_, job.elements), media_type=NDJSON
    )
