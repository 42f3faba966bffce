"""Async FHIR R4 REST client on one pooled ``httpx.AsyncClient`` per endpoint.

Resources travel as plain JSON dicts: parsing every search result into pydantic
models would dominate sync time. Resources we *write* are built and validated with
``fhir.resources`` (see :mod:`healthy_homes.fhir.resources`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx

from healthy_homes.errors import (
    FhirError,
    FhirResponseError,
    FhirStatusError,
    FhirTransportError,
)

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

JSON = dict[str, Any]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _diagnostics(response: httpx.Response) -> str | None:
    """The first OperationOutcome diagnostics, if the body is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or [{}]
        diag = issues[0].get("diagnostics") or issues[0].get("details", {}).get("text")
        return str(diag) if diag else None
    return None


class FhirClient:
    """A FHIR R4 endpoint: read, search with paging, create, update, transaction."""

    def __init__(
        self,
        base_url: str,
        *,
        practice: str | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.practice = practice
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            transport=transport,
            limits=limits,
            timeout=timeout,
            verify=verify,
            cert=cert,
            headers={"Accept": FHIR_JSON},
        )

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    def resolve(self, url: str) -> str:
        """Make a server-given URL (absolute or relative) absolute."""
        return urljoin(self.base_url, url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json_body: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; map failures onto the FhirError tree."""
        request_id = str(uuid.uuid4())
        all_headers = {"X-Request-Id": request_id, **(headers or {})}
        content = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers["Content-Type"] = FHIR_JSON
        target = self.resolve(url)
        try:
            response = await self._http.request(
                method, target, params=params, content=content, headers=all_headers
            )
        except httpx.TimeoutException as exc:
            raise FhirTransportError(
                f"{method} timed out: {type(exc).__name__}", url=target, practice=self.practice
            ) from exc
        except httpx.TransportError as exc:
            raise FhirTransportError(
                f"{method} failed to connect or was cut off: {type(exc).__name__}",
                url=target,
                practice=self.practice,
            ) from exc
        log.debug(
            "fhir %s %s -> %s",
            method,
            response.request.url.path,
            response.status_code,
            extra={"request_id": request_id, "practice": self.practice},
        )
        if response.status_code >= 400:
            diag = _diagnostics(response)
            raise FhirStatusError(
                f"{method} answered HTTP {response.status_code}" + (f": {diag}" if diag else ""),
                status_code=response.status_code,
                url=target,
                retry_after=_retry_after(response),
                diagnostics=diag,
                practice=self.practice,
            )
        return response

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json_body: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        expect: str | None = None,
    ) -> JSON:
        """Send one request and decode its FHIR JSON body, checking ``resourceType``."""
        response = await self.request(
            method, url, params=params, json_body=json_body, headers=headers
        )
        try:
            body = response.json()
        except ValueError as exc:
            raise FhirResponseError(
                f"{method} answered with a body that is not JSON", url=str(response.url),
                practice=self.practice,
            ) from exc
        if not isinstance(body, dict) or "resourceType" not in body:
            raise FhirResponseError(
                f"{method} answered with JSON that is not a FHIR resource",
                url=str(response.url),
                practice=self.practice,
            )
        if expect is not None and body["resourceType"] != expect:
            raise FhirResponseError(
                f"expected a {expect}, got a {body['resourceType']}",
                url=str(response.url),
                practice=self.practice,
            )
        return body

    async def read(self, resource_type: str, resource_id: str) -> JSON:
        """GET [base]/[type]/[id]."""
        return await self.request_json("GET", f"{resource_type}/{resource_id}", expect=resource_type)

    async def search_pages(
        self, resource_type: str, params: Mapping[str, str | list[str]] | None = None
    ) -> AsyncIterator[JSON]:
        """Yield each searchset Bundle page, following ``next`` links to the end."""
        url: str | None = resource_type
        page_params: Mapping[str, str | list[str]] | None = params
        seen: set[str] = set()
        while url is not None:
            bundle = await self.request_json("GET", url, params=page_params, expect="Bundle")
            yield bundle
            url = next_link(bundle)
            page_params = None  # the next link carries the query
            if url is not None:
                if url in seen:
                    raise FhirError(
                        "server returned a paging loop (same next link twice)",
                        url=url,
                        practice=self.practice,
                    )
                seen.add(url)

    async def search(
        self, resource_type: str, params: Mapping[str, str | list[str]] | None = None
    ) -> AsyncIterator[JSON]:
        """Yield every matching resource (search mode ``match``) across all pages."""
        async for bundle in self.search_pages(resource_type, params):
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource")
                mode = (entry.get("search") or {}).get("mode", "match")
                if resource and mode == "match" and resource.get("resourceType") == resource_type:
                    yield resource

    async def create(self, resource: JSON, *, if_none_exist: str | None = None) -> JSON:
        """POST a resource; with ``if_none_exist`` a conditional create."""
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        return await self.request_json(
            "POST", resource["resourceType"], json_body=resource, headers=headers,
            expect=resource["resourceType"],
        )

    async def update(self, resource: JSON, *, if_match: str | None = None) -> JSON:
        """PUT a resource by id; with ``if_match`` a version-aware update."""
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match
        return await self.request_json(
            "PUT",
            f"{resource['resourceType']}/{resource['id']}",
            json_body=resource,
            headers=headers,
            expect=resource["resourceType"],
        )

    async def transaction(self, bundle: JSON, *, headers: Mapping[str, str] | None = None) -> JSON:
        """POST a transaction or batch Bundle to the base URL."""
        return await self.request_json("POST", "", json_body=bundle, headers=headers, expect="Bundle")


def next_link(bundle: JSON) -> str | None:
    """The Bundle's ``next`` link, if any."""
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
