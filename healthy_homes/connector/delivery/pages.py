"""The operator's outbox page: see stuck and dead-lettered referrals, retry or cancel them.

Built on ``healthy_homes.web`` (NHS layout, CSP, CSRF). Rows show ids, states,
attempts and operational errors only, never the referral's dataset. The forms post
through ``outbox.js``, which adds the page's CSRF token as the middleware expects.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from healthy_homes.clock import Clock
from healthy_homes.connector.delivery import outbox
from healthy_homes.errors import ReferralError
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxState
from healthy_homes.web.app import create_web_app
from healthy_homes.web.identity import IdentityProvider
from healthy_homes.web.templating import make_environment, render

PREFIX = "/referrals/outbox"
STATIC = Path(__file__).with_name("static")
SHOWN_STATES = [s.value for s in OutboxState]


def outbox_router(db: Database, clock: Clock, identity: IdentityProvider) -> APIRouter:
    """Routes under ``/referrals/outbox``: the list, retry and cancel."""
    env = make_environment(["healthy_homes.connector.delivery"])
    router = APIRouter(prefix=PREFIX)

    def operator(request: Request) -> str:
        person = identity.identify(request)
        if person is None:
            raise HTTPException(status_code=403, detail="not signed in")
        return person.recorded_as

    @router.get("", response_class=HTMLResponse)
    def page(request: Request, state: str = OutboxState.DEAD.value) -> Response:
        user = identity.identify(request)
        if user is None:
            signed_out = {"signedOut": True}
            return render(env, request, "delivery/outbox.html", signed_out, status_code=403)
        chosen = state if state in SHOWN_STATES else OutboxState.DEAD.value
        rows = outbox.listing(db, state=chosen, limit=200)
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
    def retry(request: Request, referral_id: str) -> Response:
        operator(request)
        try:
            outbox.retry(db, referral_id, clock)
        except ReferralError as exc:
            raise HTTPException(status_code=409, detail=exc.message) from None
        return RedirectResponse(f"{PREFIX}?state=dead", status_code=303)

    @router.post("/{referral_id}/cancel")
    async def cancel(request: Request, referral_id: str) -> Response:
        who = operator(request)
        # URL-encoded form parsed here: no multipart parser needed for one field.
        fields = parse_qs((await request.body()).decode(errors="replace")[:4096])
        text = " ".join(" ".join(fields.get("reason", [])).split())[:300]
        if not text:
            raise HTTPException(status_code=422, detail="give a reason")
        try:
            outbox.cancel(db, referral_id, clock, f"{text} (by {who})")
        except ReferralError as exc:
            raise HTTPException(status_code=409, detail=exc.message) from None
        return RedirectResponse(f"{PREFIX}?state=dead", status_code=303)

    return router


def create_outbox_app(
    db: Database,
    clock: Clock,
    *,
    identity: IdentityProvider,
    csrf_secret: bytes,
    assets_dir: Path | None = None,
) -> FastAPI:
    """A small app for operators: the outbox page on the shared web set-up."""
    app = create_web_app(
        title="Healthy Homes referral outbox", csrf_secret=csrf_secret, assets_dir=assets_dir
    )
    app.mount("/static/delivery", StaticFiles(directory=STATIC), name="delivery-static")
    app.include_router(outbox_router(db, clock, identity))

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse(PREFIX, status_code=303)

    return app
