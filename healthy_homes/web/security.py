"""Security headers on every response, and a fresh CSP nonce for every request.

The Content-Security-Policy allows scripts only from our own origin or carrying the
request's nonce (nhsuk-frontend's template has one inline script that takes it), and
styles, images, fonts and connections only from our own origin: an injected
``<script>`` or ``onerror=`` never runs, and the page never calls out to third parties
(nhsuk-frontend's web fonts from assets.nhs.uk included; the system font stands in).
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_KEY = "csp_nonce"
#: Paths whose responses hold no patient data and may be cached.
CACHEABLE_PREFIXES = ("/assets/", "/static/")


def content_security_policy(nonce: str) -> str:
    """The policy for one response."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "manifest-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


def csp_nonce(scope: MutableMapping[str, Any]) -> str:
    """The nonce the middleware chose for this request ('' outside it)."""
    return str(scope.get("state", {}).get(NONCE_KEY, ""))


class SecurityHeadersMiddleware:
    """Adds the CSP (with a per-request nonce) and the other hardening headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})[NONCE_KEY] = nonce
        path = str(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"content-security-policy"
                ]
                policy = content_security_policy(nonce).encode()
                headers.append((b"content-security-policy", policy))
                headers.extend(STATIC_HEADERS)
                if not path.startswith(CACHEABLE_PREFIXES):
                    # Pages and API answers carry patient data: never store them.
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
