"""CSRF protection for every state-changing request: a signed double-submit token.

A random value lives in an HttpOnly, SameSite=Strict cookie; the page carries
HMAC(secret, value) in a ``<meta>`` tag and scripts send it back in ``X-CSRF-Token``.
A forged cross-site request can neither read the page's token nor compute one for the
victim's cookie. The ``Origin`` and ``Sec-Fetch-Site`` headers, when the browser sends
them, must also say same-origin. Plain HTML forms (no JavaScript) send the token as a
``csrf_token`` field instead; :class:`FormCsrfToken` moves it into the header, so one
middleware checks every app's every state-changing request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "hh_csrf"
HEADER = "x-csrf-token"
TOKEN_KEY = "csrf_token"  # noqa: S105 - a scope key, not a secret
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
MAX_FORM = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def sign(secret: bytes, value: str) -> str:
    """The token the page must send back for this cookie value."""
    digest = hmac.new(secret, value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _cookie_value(headers: Headers) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except ValueError:
        return None
    morsel = jar.get(COOKIE)
    if morsel is None or not _COOKIE_SHAPE.match(morsel.value):
        return None
    return morsel.value


def _same_origin(scope: Scope, headers: Headers) -> bool:
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None and origin != f"{scope.get('scheme', 'http')}://{host}":
        return False
    return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


class CsrfMiddleware:
    """Issues the cookie and token; refuses unsafe methods without a matching token."""

    def __init__(self, app: ASGIApp, *, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the CSRF secret must be at least 16 bytes")
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        value = _cookie_value(headers)
        fresh = value is None
        if value is None:
            value = secrets.token_urlsafe(32)
        token = sign(self.secret, value)
        scope.setdefault("state", {})[TOKEN_KEY] = token
        if scope["method"] not in SAFE_METHODS:
            sent = headers.get(HEADER, "")
            if fresh or not hmac.compare_digest(sent, token) or not _same_origin(scope, headers):
                await _refuse(send)
                return

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                secure = "; Secure" if scope.get("scheme") == "https" else ""
                cookie = f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"
                headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _refuse(send: Send) -> None:
    body = json.dumps({"error": "missing or invalid CSRF token; reload the page"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _null_origin(name: bytes, value: bytes, headers: dict[bytes, bytes]) -> bool:
    """An ``Origin: null`` that the browser itself says is same-origin.

    Under the shared ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null``
    on a form navigation (Fetch standard, "serializing a request origin"). The browser
    also sends ``Sec-Fetch-Site``, which pages cannot forge; when that says
    same-origin, the null Origin is dropped and the CSRF middleware still checks both
    the signed token and ``Sec-Fetch-Site``.
    """
    return (
        name == b"origin" and value == b"null" and headers.get(b"sec-fetch-site") == b"same-origin"
    )


class FormCsrfToken:
    """ASGI middleware: a form post's ``csrf_token`` field becomes the CSRF header.

    It goes outside :class:`CsrfMiddleware`, which still does all the checking (the
    signed token against the cookie, and same origin).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if not content_type.startswith(FORM_TYPE) or HEADER.encode() in headers:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM:
                await Response("form too large", 413).__call__(scope, receive, send)
                return
        token = parse_qs(body.decode("utf-8", "replace")).get("csrf_token", [""])[0]
        kept = [(k, v) for k, v in scope["headers"] if not _null_origin(k, v, headers)]
        scope = {**scope, "headers": [*kept, (HEADER.encode(), token.encode())]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
