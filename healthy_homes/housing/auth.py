"""Officer sign-in: scrypt-checked passwords, server-side sessions, form CSRF tokens.

The session cookie holds a random token; the table holds only its SHA-256, so a copy
of the database cannot be replayed as a session. The cookie is HttpOnly and
SameSite=Strict, and Secure whenever the request came over HTTPS (or ``secure`` is set).
Pages are plain HTML forms that work without JavaScript: :class:`FormCsrfToken` moves
the form's ``csrf_token`` field into the header the shared CSRF middleware checks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthy_homes.housing.passwords import dummy_hash, verify_password
from healthy_homes.housing.teams import token_hash
from healthy_homes.store.models import HousingSession, HousingTeam, HousingUser
from healthy_homes.web.csrf import HEADER

COOKIE = "hh_housing_session"
SESSION_HOURS = 8
MAX_FORM = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Officer:
    """The signed-in housing officer and their team."""

    user_id: str
    username: str
    display_name: str
    team_id: str
    team_name: str


def check_password(session: Session, username: str, password: str) -> HousingUser | None:
    """The user if the password is right; the same work is done for unknown names."""
    user = session.exec(select(HousingUser).where(HousingUser.username == username)).first()
    if user is None:
        verify_password(password, dummy_hash())
        return None
    return user if verify_password(password, user.password_hash) else None


def start_session(session: Session, user: HousingUser, now: datetime) -> str:
    """A new session for ``user``; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=SESSION_HOURS)
    session.add(
        HousingSession(id=token_hash(token), user_id=user.id, created_at=now, expires_at=expires)
    )
    return token


def _cookie(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value and len(value) <= 100 else None


def officer_of(session: Session, request: Request, now: datetime) -> Officer | None:
    """The officer whose live session this request carries, or None."""
    token = _cookie(request)
    if token is None:
        return None
    row = session.get(HousingSession, token_hash(token))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(HousingUser, row.user_id)
    team = session.get(HousingTeam, user.team_id) if user else None
    if user is None or team is None:
        return None
    return Officer(user.id, user.username, user.display_name, team.id, team.name)


def end_session(session: Session, request: Request) -> None:
    """Forget this request's session."""
    token = _cookie(request)
    if token is not None:
        row = session.get(HousingSession, token_hash(token))
        if row is not None:
            session.delete(row)


def set_cookie(response: Response, request: Request, token: str, *, secure: bool) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure or request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request, *, secure: bool) -> None:
    """Remove the session cookie."""
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure or request.url.scheme == "https",
    )


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

    It goes outside the shared CSRF middleware, which still does all the checking (the
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
