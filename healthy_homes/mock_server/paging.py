"""Searchset Bundles and the opaque page tokens their ``next`` links carry.

A token freezes the query, the snapshot taken at the first page and the keyset
cursor (the sequence number of the last entry sent), so every page is computed
against the same state of the store.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from healthy_homes.mock_server import jsonio
from healthy_homes.mock_server.fhirdates import format_instant
from healthy_homes.mock_server.outcome import operation_outcome
from healthy_homes.mock_server.query import Query, QueryError
from healthy_homes.mock_server.search import Page
from healthy_homes.mock_server.store import Version

PAGE_TOKEN = "_page_token"  # noqa: S105 - a query parameter name, not a secret
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


@dataclass(slots=True)
class PageToken:
    """Where a paging session stands."""

    type: str
    pairs: list[tuple[str, str]]
    snapshot: int
    snapshot_ts: int
    cursor: int | None
    total: int | None
    lenient: bool

    def encode(self) -> str:
        """An opaque URL-safe string."""
        raw = jsonio.dumps(
            [
                self.type,
                self.pairs,
                self.snapshot,
                self.snapshot_ts,
                self.cursor,
                self.total,
                self.lenient,
            ]
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> PageToken:
        """Parse a token; raise QueryError when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            type_, pairs, snapshot, snapshot_ts, cursor, total, lenient = jsonio.loads(raw)
            return cls(
                str(type_),
                [(str(k), str(v)) for k, v in pairs],
                int(snapshot),
                int(snapshot_ts),
                None if cursor is None else int(cursor),
                None if total is None else int(total),
                bool(lenient),
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            raise QueryError("invalid or corrupted page token") from exc


def _subset(version: Version, elements: tuple[str, ...]) -> bytes:
    resource = version.resource()
    keep = {"resourceType", "id", "meta", *elements}
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    out["meta"] = meta
    return jsonio.dumps(out)


def _entry(base: str, version: Version, body: bytes, mode: str) -> bytes:
    return b"".join(
        (
            b'{"fullUrl":',
            jsonio.dumps(f"{base}/{version.type}/{version.id}"),
            b',"resource":',
            body,
            b',"search":{"mode":"',
            mode.encode(),
            b'"}}',
        )
    )


def searchset(
    *,
    base: str,
    query: Query,
    page: Page,
    self_url: str,
    next_token: PageToken | None,
    now_us: int,
) -> bytes:
    """The encoded searchset Bundle of one page, spliced from stored bytes."""
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(now_us)},
        "type": "searchset",
    }
    if page.total is not None and query.total != "none":
        head["total"] = page.total
    links = [{"relation": "self", "url": self_url}]
    if next_token is not None:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{query.type}?{urlencode({PAGE_TOKEN: next_token.encode()})}",
            }
        )
    head["link"] = links
    entries = []
    for version in page.matches:
        body = _subset(version, query.elements) if query.elements else version.body
        entries.append(_entry(base, version, body, "match"))
    for version in page.includes:
        entries.append(_entry(base, version, version.body, "include"))
    if query.ignored:
        outcome = operation_outcome(
            "warning",
            "not-supported",
            "ignored unsupported search parameters: " + ", ".join(sorted(set(query.ignored))),
        )
        entries.append(b'{"resource":' + jsonio.dumps(outcome) + b',"search":{"mode":"outcome"}}')
    encoded = jsonio.dumps(head)
    if not entries:
        return encoded
    return encoded[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
