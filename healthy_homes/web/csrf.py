"""CSRF protection for every state-changing request: a signed double-submit token.

A random value lives in an HttpOnly, SameSite=Strict cookie; the page carries
HMAC(secret, value) in a ``<meta>`` tag and scripts send it back in ``X-CSRF-Token``.
A forged cross-site request can neither read the page's token nor compute one for the
victim's cookie. The ``Origin`` and ``Sec-Fetch-Site`` headers, when the browser sends
them, must also say same-origin. When real sign-in sessions arrive (issue 7), the cookie
value is replaced by the session id and nothing else changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "hh_csrf"
HEADER = "x-csrf-token"
TOKEN_KEY = "csrf_token"  # noqa: S105 - a scope key, not a secret
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


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
