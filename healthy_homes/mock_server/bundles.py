"""Transaction and batch Bundles posted to the base URL.

A transaction is all or nothing: every entry is resolved and checked (conditional
creates, ``urn:uuid`` and conditional references, validation, ``ifMatch``) under the
store lock before anything is written, then the writes are applied in the order
the spec gives (DELETE, POST, PUT, GET). ``request.ifNoneExist`` that finds one
match reuses it, and references to that entry's ``fullUrl`` point at the match:
this is how a receiver de-duplicates referrals sent twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from healthy_homes.mock_server import interactions, jsonio
from healthy_homes.mock_server.outcome import FhirHttpError
from healthy_homes.mock_server.store import MockStore, StoreError, Version, parse_etag
from healthy_homes.mock_server.validation import validate_resource

JSON = dict[str, Any]
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3, "HEAD": 3}


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    type: str
    id: str | None
    query: str | None
    resource: JSON | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None
    existing: Version | None = None


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _parse_entry(index: int, raw: Any, base_url: str) -> _Entry:
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise FhirHttpError(400, f"Bundle.entry[{index}] has no request")
    request = raw["request"]
    method = str(request.get("method", "")).upper()
    url = str(request.get("url", ""))
    if method not in _ORDER:
        raise FhirHttpError(400, f"Bundle.entry[{index}].request.method {method!r} not supported")
    if url.startswith(base_url.rstrip("/") + "/"):
        url = url[len(base_url.rstrip("/")) + 1 :]
    path, _, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise FhirHttpError(400, f"Bundle.entry[{index}].request.url is not Type or Type/id")
    interactions.check_type(parts[0])
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        validate_resource(resource, parts[0])
    if method in ("PUT", "DELETE") and (len(parts) != 2 or query):
        raise FhirHttpError(
            400, f"Bundle.entry[{index}]: {method} needs Type/id (conditional forms unsupported)"
        )
    if method == "POST" and len(parts) != 1:
        raise FhirHttpError(400, f"Bundle.entry[{index}]: POST goes to a resource type")
    return _Entry(
        index,
        method,
        parts[0],
        parts[1] if len(parts) == 2 else None,
        query or None,
        resource if isinstance(resource, dict) else None,
        raw.get("fullUrl"),
        request.get("ifNoneExist"),
        request.get("ifMatch"),
    )


def _response_entry(base_url: str, status: int, version: Version) -> JSON:
    return {
        "fullUrl": f"{base_url}/{version.type}/{version.id}",
        "resource": version.resource(),
        "response": {
            "status": _status(status),
            "location": f"{version.type}/{version.id}/_history/{version.version}",
            "etag": version.etag,
            "lastModified": version.last_updated,
        },
    }


def _get(store: MockStore, entry: _Entry, base_url: str) -> JSON:
    if entry.id is not None:
        version = interactions.read(store, entry.type, entry.id)
        return _response_entry(base_url, 200, version)
    pairs = parse_qsl(entry.query or "", keep_blank_values=True)
    self_url = f"{base_url}/{entry.type}" + (f"?{entry.query}" if entry.query else "")
    body = interactions.search(store, entry.type, pairs, base_url=base_url, self_url=self_url)
    return {"resource": jsonio.loads(body), "response": {"status": _status(200)}}


def _rewrite(node: Any, resolve: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                node[key] = resolve(value)
            else:
                _rewrite(value, resolve)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, resolve)
    return node


def _transaction(store: MockStore, entries: list[_Entry], base_url: str) -> list[JSON]:
    mapping: dict[str, str] = {}
    new_ids: dict[int, str] = {}
    for e in entries:
        if e.method == "POST":
            if e.if_none_exist:
                found = interactions.conditional_matches(store, e.type, e.if_none_exist, base_url)
                if len(found) > 1:
                    raise FhirHttpError(
                        412, f"Bundle.entry[{e.index}].request.ifNoneExist matched {len(found)}"
                    )
                e.existing = found[0] if found else None
            target = e.existing.id if e.existing else new_ids.setdefault(e.index, str(uuid.uuid4()))
            if e.full_url:
                mapping[e.full_url] = f"{e.type}/{target}"
        elif e.method == "PUT" and e.full_url:
            mapping[e.full_url] = f"{e.type}/{e.id}"

    def resolve(reference: str) -> str:
        if reference in mapping:
            return mapping[reference]
        if reference.startswith("urn:"):
            raise FhirHttpError(400, f"reference {reference} matches no fullUrl in the Bundle")
        if "?" in reference and not reference.startswith("#"):
            type_, _, condition = reference.partition("?")
            interactions.check_type(type_)
            found = interactions.conditional_matches(store, type_, condition, base_url)
            if len(found) != 1:
                raise FhirHttpError(
                    412, f"conditional reference to {type_} matched {len(found)} resources"
                )
            return found[0].reference
        return reference

    for e in entries:
        if e.resource is not None:
            _rewrite(e.resource, resolve)
        if e.method == "PUT":
            assert e.resource is not None
            if e.resource.get("id") != e.id:
                raise FhirHttpError(400, f"Bundle.entry[{e.index}]: resource id differs from url")
            if e.if_match is not None:
                current = store.current(e.type, e.id or "")
                if current is None or current.deleted or current.version != parse_etag(e.if_match):
                    raise FhirHttpError(412, f"Bundle.entry[{e.index}]: ifMatch does not match")
    results: dict[int, JSON] = {}
    for e in sorted(entries, key=lambda x: _ORDER[x.method]):
        if e.method == "DELETE":
            store.delete(e.type, e.id or "")
            results[e.index] = {"response": {"status": _status(204)}}
        elif e.method == "POST" and e.existing is not None:
            results[e.index] = _response_entry(base_url, 200, e.existing)
        elif e.method == "POST":
            assert e.resource is not None
            body = {k: v for k, v in e.resource.items() if k != "id"}
            version = store.create(body, resource_id=new_ids[e.index])
            results[e.index] = _response_entry(base_url, 201, version)
        elif e.method == "PUT":
            assert e.resource is not None
            version, created = store.update(e.resource)
            results[e.index] = _response_entry(base_url, 201 if created else 200, version)
        else:
            results[e.index] = _get(store, e, base_url)
    return [results[e.index] for e in entries]


def _batch_one(store: MockStore, index: int, raw: Any, base_url: str) -> JSON:
    try:
        e = _parse_entry(index, raw, base_url)
        if e.method == "POST":
            w = interactions.create(
                store, e.type, e.resource, base_url=base_url, if_none_exist=e.if_none_exist
            )
            return _response_entry(base_url, w.status, w.version)
        if e.method == "PUT":
            w = interactions.update(store, e.type, e.id or "", e.resource, if_match=e.if_match)
            return _response_entry(base_url, w.status, w.version)
        if e.method == "DELETE":
            interactions.delete(store, e.type, e.id or "")
            return {"response": {"status": _status(204)}}
        return _get(store, e, base_url)
    except FhirHttpError as exc:
        return {"response": {"status": _status(exc.status), "outcome": exc.outcome()}}


def process_bundle(store: MockStore, bundle: Any, *, base_url: str) -> JSON:
    """Process a transaction or batch Bundle; return the response Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirHttpError(400, "POST to the base URL takes a transaction or batch Bundle")
    kind = bundle.get("type")
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise FhirHttpError(400, "Bundle.entry must be a list")
    if kind == "batch":
        out = [_batch_one(store, i, raw, base_url) for i, raw in enumerate(raw_entries)]
    elif kind == "transaction":
        with store.lock:
            entries = [_parse_entry(i, raw, base_url) for i, raw in enumerate(raw_entries)]
            try:
                out = _transaction(store, entries, base_url)
            except StoreError as exc:
                raise interactions.store_error(exc) from None
    else:
        raise FhirHttpError(400, f"Bundle.type {kind!r}: expected transaction or batch")
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": f"{kind}-response",
        "entry": out,
    }
