"""The sign-in and sign-out pages every app shares, and its access refusals.

A plain HTML form (works without JavaScript) posting the CSRF token like every other
form. A refusal always says the same thing, whether the name is unknown, the password
wrong, the account disabled or locked out, so nothing can be learnt from it.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import FastAPI
from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from healthy_homes.web.access import (
    SIGN_IN_PATH,
    AccessControl,
    NotPermitted,
    SignInRequired,
    access_of,
    to_sign_in,
    wants_page,
)
from healthy_homes.web.csrf import COOKIE as CSRF_COOKIE
from healthy_homes.web.templating import render

SIGN_OUT_PATH = "/sign-out"
MAX_FIELD = 200


def _env(request: Request) -> Environment:
    env: Environment = request.app.state.sign_in_env
    return env


def _next(raw: str | None, home: str) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return home
    return raw


def _form_page(request: Request, status: int = 200, **context: object) -> Response:
    access = access_of(request)
    values = {
        "pageTitle": "Sign in",
        "appName": request.app.state.sign_in_title,
        "next": _next(request.query_params.get("next"), access.home),
        **context,
    }
    return render(_env(request), request, "web/sign-in.html", values, status_code=status)


async def sign_in_page(request: Request) -> Response:
    """The sign-in form (or straight on, if already signed in)."""
    access = access_of(request)
    if access.principal(request) is not None:
        return RedirectResponse(_next(request.query_params.get("next"), access.home), 303)
    return _form_page(request)


async def sign_in(request: Request) -> Response:
    """Check the password (rate-limited in the store); start a session or say no."""
    access = access_of(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    username = " ".join((form.get("username") or [""])[0].split())[:120]
    password = (form.get("password") or [""])[0][:MAX_FIELD]
    target = _next((form.get("next") or [""])[0], access.home)
    address = request.client.host if request.client else "unknown"
    token = access.store.sign_in(username, password, address) if username else None
    principal = access.store.principal(token) if token else None
    if token is not None and (principal is None or not access.allows(principal, access.roles)):
        # Right password, wrong service (e.g. a housing officer at a practice's pop-up):
        # no session here, and the same answer as any other refusal.
        access.store.sign_out(token)
        token = None
    if token is None:
        return _form_page(request, 400, failed=True, username=username, next=target)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        access.cookie_name(request),
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=access.secure(request),
    )
    _rotate_csrf(request, response)
    return response


def _rotate_csrf(request: Request, response: Response) -> None:
    # A CSRF cookie planted or seen before sign-in (login CSRF, a shared machine) must
    # not carry over into the session: the next page signs a token for the new value.
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        path="/",
        httponly=True,
        samesite="strict",
        secure=access_of(request).secure(request),
    )


async def sign_out(request: Request) -> Response:
    """End the session and forget the cookie."""
    access = access_of(request)
    token = access.token(request)
    if token is not None:
        access.store.sign_out(token)
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(
        access.cookie_name(request),
        path="/",
        httponly=True,
        samesite="strict",
        secure=access.secure(request),
    )
    _rotate_csrf(request, response)
    return response


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    return to_sign_in(request)


async def _not_permitted(request: Request, exc: Exception) -> Response:
    if wants_page(request):
        context = {"pageTitle": "No access", "clinician": access_of(request).principal(request)}
        return render(_env(request), request, "web/forbidden.html", context, status_code=403)
    return Response(
        '{"error": "You do not have access to this."}', 403, media_type="application/json"
    )


def install_sign_in(app: FastAPI, access: AccessControl, env: Environment, *, title: str) -> None:
    """Add ``/sign-in`` and ``/sign-out`` to ``app`` and answer its access refusals."""
    app.state.access = access
    app.state.sign_in_env = env
    app.state.sign_in_title = title
    app.add_api_route(SIGN_IN_PATH, sign_in_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(SIGN_IN_PATH, sign_in, methods=["POST"], include_in_schema=False)
    app.add_api_route(SIGN_OUT_PATH, sign_out, methods=["POST"], include_in_schema=False)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(NotPermitted, _not_permitted)
