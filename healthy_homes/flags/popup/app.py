"""The pop-up app: one practice, its clinicians' pages, and the arrival watcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from healthy_homes.accounts import SessionPolicy, access_control
from healthy_homes.clock import Clock, SystemClock
from healthy_homes.config.models import (
    AuthConfig,
)
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.flags.popup.board import PromptBoard
from healthy_homes.flags.popup.routes import install_routes
from healthy_homes.flags.popup.state import PopupConfig, PopupState
from healthy_homes.flags.popup.watcher import PromptWatcher
from healthy_homes.store.db import Database
from healthy_homes.web.access import PRACTICE_ROLES, SessionIdentity
from healthy_homes.web.app import create_web_app
from healthy_homes.web.identity import ProxyHeaderIdentity
from healthy_homes.web.signin import install_sign_in
from healthy_homes.web.templating import make_environment

STATIC = Path(__file__).with_name("static")
TransportFor = Callable[[str], httpx.AsyncBaseTransport | None]


#: The watcher looks again in a moment anyway: one quick retry, then report and move on.
WATCH_POLICY = RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_cap=1.0, breaker_cooldown=10)
WATCH_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def _client(
    url: str,
    auth: AuthConfig,
    ods: str | None,
    clock: Clock,
    transport_for: TransportFor,
    **options: Any,
) -> FhirClient:
    return FhirClient(
        url,
        practice=ods,
        auth=auth_from_config(auth, clock=clock, practice=ods),
        verify=tls_from_config(auth),
        transport=transport_for(url),
        clock=clock,
        **options,
    )


def create_popup_app(
    config: PopupConfig,
    *,
    db: Database,
    csrf_secret: bytes,
    clock: Clock | None = None,
    assets_dir: Path | None = None,
    transport_for: TransportFor | None = None,
    secure_cookies: bool = False,
    session_policy: SessionPolicy | None = None,
    trusted_proxy: ProxyHeaderIdentity | None = None,
) -> FastAPI:
    """The pop-up page app for one practice (serve it with uvicorn or ServerThread).

    Only the practice's own clinicians sign in to it (``/sign-in``); the person recorded
    as acting is always the signed-in user.
    """
    clock = clock or SystemClock()
    transports = transport_for or (lambda _url: None)
    state = PopupState(
        config=config,
        identity=SessionIdentity(),
        env=make_environment(["healthy_homes.flags.popup"]),
        board=PromptBoard(),
    )
    access = access_control(
        db,
        clock,
        app_name="popup",
        roles=PRACTICE_ROLES,
        organisation=config.practice.ods_code,
        secure_cookies=secure_cookies,
        session_policy=session_policy,
        trusted_proxy=trusted_proxy,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        ods = config.practice.ods_code
        practice_url = config.practice.fhir_base_url
        practice = _client(str(practice_url), config.practice.auth, ods, clock, transports)
        # Referrals to FHIR services go at once; the rest go through the delivery worker.
        housing = {
            s.id: _client(str(s.fhir_base_url), s.auth, None, clock, transports)
            for s in config.referral_services
            if s.transport == "fhir" and s.fhir_base_url is not None
        }
        # Its own client and circuit breaker: a failing poll must not hold up a consent.
        watching = _client(
            str(practice_url),
            config.practice.auth,
            ods,
            clock,
            transports,
            policy=WATCH_POLICY,
            timeout=WATCH_TIMEOUT,
        )
        state.actions = ClinicianActions(
            db,
            practice_ods=config.practice.ods_code,
            practice_client=practice,
            service=config.service,
            housing_client=housing.get(config.service.id),
            rules=config.rules,
            clock=clock,
            services=config.referral_services,
            housing_clients=housing,
            share_health_reason=config.practice.share_health_reason,
        )
        watcher = PromptWatcher(
            board=state.board,
            client=watching,
            db=db,
            practice=config.practice.ods_code,
            clock=clock,
            zone=config.zone,
            poll_seconds=config.poll_seconds,
            watch_max_age=config.watch_max_age,
        )
        # Who is already in is listed before the first page can connect, so only
        # later arrivals pop up.
        await watcher.poll_once()
        task = asyncio.create_task(watcher.run(), name="popup-watcher")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            state.board.close()
            for client in (practice, watching, *housing.values()):
                await client.aclose()

    app = create_web_app(
        title="Healthy Homes pop-up",
        csrf_secret=csrf_secret,
        assets_dir=assets_dir,
        lifespan=lifespan,
    )
    app.state.popup = state
    install_sign_in(app, access, state.env, title="Healthy Homes prompts")
    app.mount("/static/popup", StaticFiles(directory=STATIC), name="popup-static")
    install_routes(app)
    return app


def close_streams(app: FastAPI) -> None:
    """End the pop-up app's open event streams, from any thread, before stopping it."""
    state: PopupState = app.state.popup
    state.close_streams()
