"""Async FHIR R4 REST client on one pooled ``httpx.AsyncClient`` per endpoint.

Resources travel as plain JSON dicts: parsing every search result into pydantic
models would dominate sync time, and so would the standard library's ``json`` (a
register sync decodes megabytes), so answers are decoded with ``orjson``. Resources
we *write* are built and validated with ``fhir.resources`` (see
:mod:`healthy_homes.fhir.resources`).
"""

from __future__ import annotations

import contextlib
import random
import re
import ssl
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from contextvars import ContextVar
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx
import orjson

from healthy_homes.clock import Clock, SystemClock
from healthy_homes.errors import (
    FhirError,
    FhirResponseError,
    FhirStatusError,
    FhirTransportError,
)
from healthy_homes.fhir.breaker import CircuitBreaker
from healthy_homes.fhir.observe import attempt_status, log_attempt, redact, safe_url
from healthy_homes.fhir.retry import (
    Retrier,
    RetryPolicy,
    Sleep,
    is_idempotent,
    parse_retry_after,
    should_retry,
)
from healthy_homes.fhir.tls import default_context, verify_for
from healthy_homes.metrics import PAGES_FETCHED

FHIR_JSON = "application/fhir+json"
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
REQUEST_ID = "X-Request-Id"

JSON = dict[str, Any]
T = TypeVar("T")

#: A path relative to the base that starts with a resource type or operation, as in
#: "Patient?_id=..." or "$export": no scheme, no dot segments, nothing urljoin would change.
_PLAIN_RELATIVE = re.compile(
    r"[A-Za-z$][A-Za-z0-9_$-]*"  # the first segment: a type or an operation, never a scheme
    r"(?:/[A-Za-z0-9_$-][A-Za-z0-9._$-]*)*"  # further segments, none starting with a dot
    r"(?:[?#]|$)"
)

_sent_callback: ContextVar[Callable[[], None] | None] = ContextVar(
    "fhir_request_sent", default=None
)


@contextlib.contextmanager
def notify_sent(callback: Callable[[], None]) -> Iterator[None]:
    """Requests made in this block, and in tasks created in it, call ``callback`` as soon
    as they are written to the connection (or their attempt ended without that).

    Lets a caller start a request, wait until the server has it, and only then begin
    work that holds the event loop, so that the two overlap.
    """
    token = _sent_callback.set(callback)
    try:
        yield
    finally:
        _sent_callback.reset(token)


def _diagnostics(response: httpx.Response) -> str | None:
    """The first OperationOutcome diagnostics, if the body is one."""
    try:
        body = orjson.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or [{}]
        diag = issues[0].get("diagnostics") or issues[0].get("details", {}).get("text")
        return redact(str(diag)) if diag else None
    return None


class FhirClient:
    """A FHIR R4 endpoint: read, search with paging, create, update, transaction.

    Every call goes through :meth:`request`: a circuit breaker, then attempts with
    backoff under a :class:`RetryPolicy`, each carrying the call's ``X-Request-Id``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        practice: str | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        cert: tuple[str, str] | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.practice = practice
        self.policy = policy or RetryPolicy()
        self._clock = clock or SystemClock()
        self._retrier = Retrier(self.policy, sleep=sleep, rng=rng)
        self.breaker = breaker or CircuitBreaker(
            threshold=self.policy.breaker_threshold,
            cooldown=timedelta(seconds=self.policy.breaker_cooldown),
            clock=self._clock,
            name=practice or safe_url(self.base_url),
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            transport=transport,
            limits=limits,
            timeout=timeout,
            # A client certificate goes into a context of its own, never the shared one.
            verify=verify_for(verify) if cert is None else verify,
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
        if _PLAIN_RELATIVE.match(url):
            return self.base_url + url  # "Patient?..." (most calls): what urljoin gives, cheaper
        return urljoin(self.base_url, url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json_body: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request, with retries; map failures onto the FhirError tree.

        ``idempotent`` overrides :func:`~healthy_homes.fhir.retry.is_idempotent`, e.g.
        for a message the receiver de-duplicates by ``X-Request-Id``.
        """

        async def as_is(response: httpx.Response) -> httpx.Response:
            return response

        return await self._call(method, url, params, json_body, headers, idempotent, as_is)

    async def _call(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | list[str]] | None,
        json_body: JSON | None,
        headers: Mapping[str, str] | None,
        idempotent: bool | None,
        parse: Callable[[httpx.Response], Awaitable[T]],
        *,
        http: httpx.AsyncClient | None = None,
        stream: bool = False,
    ) -> T:
        """Run the attempts of one logical call; ``parse`` failures count as attempts too.

        With ``stream`` the body is left for ``parse`` to read (and to close on failure).
        """
        all_headers = dict(headers or {})
        given = [v for k, v in all_headers.items() if k.lower() == REQUEST_ID.lower()]
        # One id per logical call, kept across retries so a receiver can spot a repeat.
        request_id = given[0] if given else str(uuid.uuid4())
        if not given:
            all_headers[REQUEST_ID] = request_id
        content = None
        if json_body is not None:
            # orjson: the transaction body is encoded on every send (the delivery hot path).
            content = orjson.dumps(json_body)
            all_headers["Content-Type"] = FHIR_JSON
        target = self.resolve(url)
        where = safe_url(target)
        if idempotent is None:
            idempotent = is_idempotent(method, target, all_headers, json_body)

        async def attempt(number: int) -> T:
            self.breaker.before_call(url=where, practice=self.practice)
            started = time.perf_counter()
            status = "-"
            try:
                response = await self._send(
                    method, target, params, content, all_headers, http=http, stream=stream
                )
                status = str(response.status_code)
                result = await parse(response)
            except FhirError as exc:
                status = attempt_status(exc, status)
                self.breaker.record_error(exc)
                raise
            except BaseException:
                self.breaker.release()
                raise
            else:
                self.breaker.record_success()
                return result
            finally:
                log_attempt(
                    practice=self.practice,
                    method=method,
                    url=target,
                    status=status,
                    attempt=number,
                    started=started,
                    request_id=request_id,
                )

        return await self._retrier.run(
            attempt,
            retry_if=lambda exc: should_retry(exc, method=method, idempotent=idempotent),
            label=f"fhir {method} {where}",
        )

    async def _send(
        self,
        method: str,
        target: str,
        params: Mapping[str, str | list[str]] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        *,
        http: httpx.AsyncClient | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One attempt on the wire; a non-2xx answer becomes FhirStatusError."""
        client = http or self._http
        sent = _sent_callback.get()
        extensions: dict[str, Any] | None = None
        if sent is not None:

            async def trace(event: str, info: Mapping[str, Any]) -> None:
                if event.endswith("send_request_body.complete"):
                    sent()

            extensions = {"trace": trace}
        try:
            request = client.build_request(
                method,
                target,
                params=params,
                content=content,
                headers=headers,
                extensions=extensions,
            )
            response = await client.send(request, stream=stream)
            if stream and response.status_code >= 400:
                try:
                    await response.aread()  # an OperationOutcome is small; it says why
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            where = safe_url(target)
            raise FhirTransportError(
                f"{method} timed out: {type(exc).__name__}", url=where, practice=self.practice
            ) from exc
        except httpx.TransportError as exc:
            raise FhirTransportError(
                f"{method} failed to connect or was cut off: {type(exc).__name__}",
                url=safe_url(target),
                practice=self.practice,
            ) from exc
        except httpx.DecodingError as exc:
            raise FhirResponseError(
                f"{method} answered with a body that could not be decoded",
                url=safe_url(target),
                practice=self.practice,
            ) from exc
        finally:
            if sent is not None:
                sent()  # in case nothing reached the wire (a transport without tracing, say)
        if response.status_code >= 400:
            where = safe_url(target)
            diag = _diagnostics(response)
            raise FhirStatusError(
                f"{method} answered HTTP {response.status_code}" + (f": {diag}" if diag else ""),
                status_code=response.status_code,
                url=where,
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"), self._clock.now()
                ),
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
        idempotent: bool | None = None,
    ) -> JSON:
        """Send one request and decode its FHIR JSON body, checking ``resourceType``."""

        async def decode(response: httpx.Response) -> JSON:
            return self._decode(method, response, expect)

        return await self._call(method, url, params, json_body, headers, idempotent, decode)

    def _decode(self, method: str, response: httpx.Response, expect: str | None) -> JSON:
        # orjson.JSONDecodeError is a ValueError; FHIR JSON is UTF-8 (invalid UTF-8 fails too).
        try:
            body = orjson.loads(response.content)
        except ValueError as exc:
            raise FhirResponseError(
                f"{method} answered with a body that is not JSON (truncated?)",
                url=safe_url(str(response.url)),
                practice=self.practice,
            ) from exc
        if not isinstance(body, dict) or "resourceType" not in body:
            raise FhirResponseError(
                f"{method} answered with JSON that is not a FHIR resource",
                url=safe_url(str(response.url)),
                practice=self.practice,
            )
        if expect is not None and body["resourceType"] != expect:
            error = FhirResponseError(
                f"expected a {expect}, got a {body['resourceType']}",
                url=safe_url(str(response.url)),
                practice=self.practice,
            )
            error.retryable = False  # a well-formed answer of the wrong kind will not change
            raise error
        return body

    async def stream_lines(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        credentials: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """GET ``url`` and yield each non-empty line of its body as it arrives (ndjson).

        Until the first line has reached the caller this is a call like any other:
        breaker, retries with backoff, errors mapped onto the FhirError tree. After that
        nothing is repeated behind the caller's back: a body cut off later raises a
        retryable FhirTransportError and the caller starts again if it wants to.
        ``credentials=False`` sends neither our token nor our client certificate (a
        pre-signed download URL on another host).
        """
        target = self.resolve(url)
        where = safe_url(target)

        def cut_off(exc: Exception) -> FhirTransportError:
            return FhirTransportError(
                f"GET body cut off: {type(exc).__name__}", url=where, practice=self.practice
            )

        async def first_lines(response: httpx.Response) -> _LineReader:
            reader = _LineReader(response)
            try:
                await reader.fill()
            except (httpx.TransportError, httpx.DecodingError) as exc:
                await reader.aclose()
                raise cut_off(exc) from exc
            except BaseException:
                await reader.aclose()
                raise
            return reader

        async with contextlib.AsyncExitStack() as stack:
            http = self._http
            if not credentials:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(
                        timeout=self._http.timeout,
                        headers={"Accept": FHIR_JSON},
                        verify=default_context(),
                    )
                )
            reader = await self._call(
                "GET", target, None, None, headers, None, first_lines, http=http, stream=True
            )
            stack.push_async_callback(reader.aclose)
            try:
                while reader.ready:
                    for line in reader.take():
                        yield line
                    await reader.fill()
            except (httpx.TransportError, httpx.DecodingError) as exc:
                error = cut_off(exc)
                self.breaker.record_error(error)
                raise error from exc

    async def read(self, resource_type: str, resource_id: str) -> JSON:
        """GET [base]/[type]/[id]."""
        return await self.request_json(
            "GET", f"{resource_type}/{resource_id}", expect=resource_type
        )

    async def search_pages(
        self,
        resource_type: str,
        params: Mapping[str, str | list[str]] | None = None,
        *,
        query: str | None = None,
    ) -> AsyncIterator[JSON]:
        """Yield each searchset Bundle page, following ``next`` links to the end.

        ``query`` is a query string already encoded, for a caller that builds many long
        ones (httpx would otherwise encode the parameters, then parse them back).
        """
        url: str | None = resource_type if query is None else f"{resource_type}?{query}"
        page_params: Mapping[str, str | list[str]] | None = params
        seen: set[str] = set()
        while url is not None:
            bundle = await self.request_json("GET", url, params=page_params, expect="Bundle")
            PAGES_FETCHED.labels(practice=self.practice or "-").inc()
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
            "POST",
            resource["resourceType"],
            json_body=resource,
            headers=headers,
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
        return await self.request_json(
            "POST", "", json_body=bundle, headers=headers, expect="Bundle"
        )


class _LineReader:
    """Splits a streamed body into lines, a chunk at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_bytes()
        self._lines: list[bytes] = []
        self._rest = b""
        self._ended = False

    @property
    def ready(self) -> bool:
        """Whether lines are waiting, or more may come."""
        return bool(self._lines) or not self._ended

    async def fill(self) -> None:
        """Read chunks until at least one whole line is waiting or the body ends."""
        while not self._lines and not self._ended:
            chunk = await anext(self._chunks, None)
            if chunk is None:
                self._ended = True
                parts = [self._rest]
            else:
                parts = (self._rest + chunk).split(b"\n")
                self._rest = parts.pop()
            self._lines = [line for part in parts if (line := part.strip())]

    def take(self) -> list[bytes]:
        """The waiting lines."""
        lines, self._lines = self._lines, []
        return lines

    async def aclose(self) -> None:
        """Stop reading and give the connection back."""
        stop = getattr(self._chunks, "aclose", None)
        try:
            if stop is not None:
                await stop()
        finally:
            await self.response.aclose()


def next_link(bundle: JSON) -> str | None:
    """The Bundle's ``next`` link, if any."""
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
