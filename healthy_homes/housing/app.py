"""The housing inbox app: the teams' FHIR bases beside the officers' pages.

The FHIR and capacity endpoints (``/teams/...``) authenticate with bearer tokens and
carry no cookies, so they sit outside the pages' CSRF middleware; everything else is
the pages, with the shared security headers, CSRF, sign-in and nhsuk-frontend assets.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from healthy_homes.accounts import SessionPolicy, access_control
from healthy_homes.accounts.pages import users_router
from healthy_homes.clock import Clock, SystemClock
from healthy_homes.housing.fhir_api import create_fhir_api
from healthy_homes.housing.pages import InboxPages, install_pages
from healthy_homes.store.db import Database
from healthy_homes.web.access import HOUSING_ROLES, Role
from healthy_homes.web.app import create_web_app
from healthy_homes.web.identity import ProxyHeaderIdentity
from healthy_homes.web.security import SecurityHeadersMiddleware
from healthy_homes.web.signin import install_sign_in
from healthy_homes.web.templating import make_environment

API_PREFIX = "/teams/"


class HousingInboxApp:
    """ASGI app: ``/teams/...`` to the FHIR API, the rest (and lifespan) to the pages."""

    def __init__(self, pages: FastAPI, api: ASGIApp) -> None:
        self.pages = pages
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(API_PREFIX):
            await self.api(scope, receive, send)
        else:
            await self.pages(scope, receive, send)


def create_housing_app(
    *,
    db: Database,
    csrf_secret: bytes,
    clock: Clock | None = None,
    assets_dir: Path | None = None,
    secure_cookies: bool = False,
    session_policy: SessionPolicy | None = None,
    trusted_proxy: ProxyHeaderIdentity | None = None,
) -> HousingInboxApp:
    """The whole inbox (serve it with uvicorn or ServerThread)."""
    clock = clock or SystemClock()
    pages = create_web_app(
        title="Healthy Homes housing inbox", csrf_secret=csrf_secret, assets_dir=assets_dir
    )
    env = make_environment(["healthy_homes.housing", "healthy_homes.accounts"])
    access = access_control(
        db,
        clock,
        app_name="housing",
        roles=HOUSING_ROLES,
        secure_cookies=secure_cookies,
        session_policy=session_policy,
        trusted_proxy=trusted_proxy,
    )
    install_sign_in(pages, access, env, title="your housing inbox")
    install_pages(pages, InboxPages(db, clock, env))
    pages.include_router(users_router(db, clock, env, Role.HOUSING_MANAGER))
    api = SecurityHeadersMiddleware(create_fhir_api(db, clock))
    return HousingInboxApp(pages, api)
