"""FHIR interactions on a :class:`MockStore`, free of HTTP details.

Routes and Bundle processing both call these, so a create inside a transaction
behaves exactly like a create on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from healthy_homes.mock_server.outcome import FhirHttpError
from healthy_homes.mock_server.paging import PageToken, searchset
from healthy_homes.mock_server.params import SEARCH_PARAMS
from healthy_homes.mock_server.query import Query, QueryError, parse_query
from healthy_homes.mock_server.search import find, run_page
from healthy_homes.mock_server.store import MockStore, StoreError, Version
from healthy_homes.mock_server.validation import validate_resource

JSON = dict[str, Any]


@dataclass(slots=True)
class Written:
    """The outcome of a create or update."""

    status: int
    version: Version


def check_type(type_: str) -> None:
    """404 for resource types this server does not hold."""
    if type_ not in SEARCH_PARAMS:
        raise FhirHttpError(404, f"resource type {type_!r} is not supported by this server")


def store_error(exc: StoreError) -> FhirHttpError:
    """The HTTP error for a store refusal."""
    return FhirHttpError(exc.status, str(exc))


def read(store: MockStore, type_: str, id_: str) -> Version:
    """GET [type]/[id]."""
    check_type(type_)
    try:
        return store.read(type_, id_)
    except StoreError as exc:
        raise store_error(exc) from None


def vread(store: MockStore, type_: str, id_: str, version_id: str) -> Version:
    """GET [type]/[id]/_history/[vid]."""
    check_type(type_)
    try:
        return store.vread(type_, id_, version_id)
    except StoreError as exc:
        raise store_error(exc) from None


def conditional_matches(
    store: MockStore, type_: str, condition: str, base_url: str
) -> list[Version]:
    """Current resources matching an ``If-None-Exist`` / conditional reference query."""
    pairs = parse_qsl(condition.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise FhirHttpError(400, "conditional query is empty")
    try:
        return find(store, type_, pairs, base_url)
    except QueryError as exc:
        raise FhirHttpError(exc.status, f"conditional query: {exc}") from None


def create(
    store: MockStore,
    type_: str,
    resource: Any,
    *,
    base_url: str,
    if_none_exist: str | None = None,
    resource_id: str | None = None,
) -> Written:
    """POST [type], optionally conditional (none: 201; one: 200; several: 412)."""
    check_type(type_)
    validate_resource(resource, type_)
    with store.lock:
        if if_none_exist:
            found = conditional_matches(store, type_, if_none_exist, base_url)
            if len(found) == 1:
                return Written(200, found[0])
            if len(found) > 1:
                raise FhirHttpError(
                    412, f"If-None-Exist matched {len(found)} {type_} resources; expected 0 or 1"
                )
        body = {k: v for k, v in resource.items() if k != "id"}
        body["resourceType"] = type_
        return Written(201, store.create(body, resource_id=resource_id))


def update(
    store: MockStore, type_: str, id_: str, resource: Any, *, if_match: str | None = None
) -> Written:
    """PUT [type]/[id], optionally version-aware; creates when the id is new."""
    check_type(type_)
    validate_resource(resource, type_)
    if resource.get("id") != id_:
        raise FhirHttpError(400, f"resource id does not match the URL id {id_!r}")
    try:
        version, created = store.update(resource, if_match=if_match)
    except StoreError as exc:
        raise store_error(exc) from None
    return Written(201 if created else 200, version)


def delete(store: MockStore, type_: str, id_: str) -> None:
    """DELETE [type]/[id]; deleting twice is fine."""
    check_type(type_)
    store.delete(type_, id_)


def parse_search(
    type_: str, pairs: list[tuple[str, str]], *, base_url: str, lenient: bool
) -> Query:
    """Parse a search or raise the 400/406 for it."""
    check_type(type_)
    try:
        return parse_query(type_, pairs, base_url=base_url, lenient=lenient)
    except QueryError as exc:
        raise FhirHttpError(exc.status, str(exc)) from None


def search(
    store: MockStore,
    type_: str,
    pairs: list[tuple[str, str]],
    *,
    base_url: str,
    self_url: str,
    lenient: bool = False,
) -> bytes:
    """The first page of a search, as an encoded searchset Bundle."""
    if any(k == "_page_token" for k, _ in pairs):
        token_values = [v for k, v in pairs if k == "_page_token"]
        if len(pairs) != 1:
            raise FhirHttpError(400, "_page_token cannot be combined with other parameters")
        return next_page(store, token_values[0], base_url=base_url, self_url=self_url)
    query = parse_search(type_, pairs, base_url=base_url, lenient=lenient)
    with store.lock:
        snapshot = store.snapshot()
        now = store.snapshot_time()
        want_total = query.total in ("accurate", "estimate") or query.count == 0
        page = run_page(store, query, snapshot=snapshot, want_total=want_total)
    token = None
    if page.next_cursor is not None:
        token = PageToken(type_, pairs, snapshot, now, page.next_cursor, page.total, lenient)
    return searchset(
        base=base_url, query=query, page=page, self_url=self_url, next_token=token, now_us=now
    )


def next_page(store: MockStore, raw_token: str, *, base_url: str, self_url: str) -> bytes:
    """A later page: same query, same snapshot, after the token's cursor."""
    try:
        token = PageToken.decode(raw_token)
    except QueryError as exc:
        raise FhirHttpError(400, str(exc)) from None
    query = parse_search(token.type, token.pairs, base_url=base_url, lenient=token.lenient)
    with store.lock:
        if token.snapshot > store.snapshot():
            raise FhirHttpError(400, "page token refers to a state this server never had")
        page = run_page(store, query, snapshot=token.snapshot, cursor=token.cursor)
    page.total = token.total
    next_token = None
    if page.next_cursor is not None:
        next_token = PageToken(
            token.type,
            token.pairs,
            token.snapshot,
            token.snapshot_ts,
            page.next_cursor,
            token.total,
            token.lenient,
        )
    # Every page carries the snapshot's instant: the poller's next watermark.
    return searchset(
        base=base_url,
        query=query,
        page=page,
        self_url=self_url,
        next_token=next_token,
        now_us=token.snapshot_ts,
    )
