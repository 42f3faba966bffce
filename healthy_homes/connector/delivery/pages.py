"""The operator's outbox page: see stuck and dead-lettered referrals, retry or cancel them.

Built on ``healthy_homes.web`` (NHS layout, CSP, CSRF, sign-in). Only a practice admin
may use it, and sees and acts on their own practice's referrals only (another
practice's referral id is 404). Rows show ids, states, attempts and operational errors
only, never the referral's dataset. The forms post through ``outbox.js``, which adds the
page's CSRF token as the middleware expects.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from healthy_homes.accounts import SessionPolicy, access_control
from healthy_homes.accounts.pages import users_router
from healthy_homes.audit import Actor
from healthy_homes.clock import Clock
from healthy_homes.connector.delivery import outbox
from healthy_homes.errors import ReferralError
from healthy_homes.reporting.pages import funnel_router
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxState, Referral
from healthy_homes.web.access import PRACTICE_ROLES, Principal, Role, require_role
from healthy_homes.web.app import create_web_app
from healthy_homes.web.identity import ProxyHeaderIdentity
from healthy_homes.web.signin import install_sign_in
from healthy_homes.web.templating import make_environment, render

PREFIX = "/referrals/outbox"
STATIC = Path(__file__).with_name("static")
SHOWN_STATES = [s.value for s in OutboxState]
ADMIN = Depends(require_role(Role.PRACTICE_ADMIN))


def outbox_router(db: Database, clock: Clock) -> APIRouter:
    """Routes under ``/referrals/outbox``: the list, retry and cancel (practice admins)."""
    env = make_environment(["healthy_homes.connector.delivery"])
    router = APIRouter(prefix=PREFIX)

    def operator(admin: Principal, referral_id: str) -> str:
        with db.session() as session:
            referral = session.get(Referral, referral_id)
        # Another practice's referral is answered exactly like one that does not exist.
        if referral is None or referral.practice_ods != admin.organisation:
            raise HTTPException(status_code=404, detail="no such referral")
        return admin.recorded_as

    @router.get("", response_class=HTMLResponse)
    def page(
        request: Request, state: str = OutboxState.DEAD.value, user: Principal = ADMIN
    ) -> Response:
        chosen = state if state in SHOWN_STATES else OutboxState.DEAD.value
        rows = [
            (entry, referral)
            for entry, referral in outbox.listing(db, state=chosen, limit=200)
            if referral is not None and referral.practice_ods == user.organisation
        ]
        return render(
            env,
            request,
            "delivery/outbox.html",
            {
                "pageTitle": "Referral outbox",
                "clinician": user,
                "rows": [entry for entry, _ in rows],
                "practices": {e.referral_id: r.practice_ods if r else "" for e, r in rows},
                "state": chosen,
                "states": SHOWN_STATES,
                "prefix": PREFIX,
            },
        )

    @router.post("/{referral_id}/retry")
    def retry(referral_id: str, admin: Principal = ADMIN) -> Response:
        operator(admin, referral_id)
        try:
            outbox.retry(db, referral_id, clock, by=Actor(admin.user_id, admin.role))
        except ReferralError as exc:
            raise HTTPException(status_code=409, detail=exc.message) from None
        return RedirectResponse(f"{PREFIX}?state=dead", status_code=303)

    @router.post("/{referral_id}/cancel")
    async def cancel(request: Request, referral_id: str, admin: Principal = ADMIN) -> Response:
        who = operator(admin, referral_id)
        # URL-encoded form parsed here: no multipart parser needed for one field.
        fields = parse_qs((await request.body()).decode(errors="replace")[:4096])
        text = " ".join(" ".join(fields.get("reason", [])).split())[:300]
        if not text:
            raise HTTPException(status_code=422, detail="give a reason")
        try:
            by = Actor(admin.user_id, admin.role)
            outbox.cancel(db, referral_id, clock, f"{text} (by {who})", by=by)
        except ReferralError as exc:
            raise HTTPException(status_code=409, detail=exc.message) from None
        return RedirectResponse(f"{PREFIX}?state=dead", status_code=303)

    return router


def create_outbox_app(
    db: Database,
    clock: Clock,
    *,
    csrf_secret: bytes,
    assets_dir: Path | None = None,
    secure_cookies: bool = False,
    session_policy: SessionPolicy | None = None,
    trusted_proxy: ProxyHeaderIdentity | None = None,
    receipt_acknowledges: Collection[str] = (),
) -> FastAPI:
    """A small app for practice admins: the outbox page on the shared web set-up.

    ``receipt_acknowledges``: housing services whose receipt counts as acknowledgement in
    the funnel report (see :func:`~healthy_homes.reporting.funnel.receipt_acknowledging`).
    """
    app = create_web_app(
        title="Healthy Homes referral outbox", csrf_secret=csrf_secret, assets_dir=assets_dir
    )
    access = access_control(
        db,
        clock,
        app_name="admin",
        roles=PRACTICE_ROLES,
        home=PREFIX,
        secure_cookies=secure_cookies,
        session_policy=session_policy,
        trusted_proxy=trusted_proxy,
    )
    install_sign_in(
        app, access, make_environment(["healthy_homes.connector.delivery"]), title="Healthy Homes"
    )
    app.mount("/static/delivery", StaticFiles(directory=STATIC), name="delivery-static")
    app.include_router(outbox_router(db, clock))
    accounts_env = make_environment(["healthy_homes.accounts"])
    app.include_router(users_router(db, clock, accounts_env, Role.PRACTICE_ADMIN))
    # The practice admin's funnel report sits beside the outbox, behind the same role.
    app.include_router(funnel_router(db, clock, receipt_acknowledges=receipt_acknowledges))

    @app.get("/", include_in_schema=False, dependencies=[ADMIN])
    def home() -> Response:
        return RedirectResponse(PREFIX, status_code=303)

    return app
