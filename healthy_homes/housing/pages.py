"""The officers' pages: the queue, a referral, what they do to it, and capacity.

Plain HTML forms (they work without JavaScript), each POST carrying the CSRF token and
answered with a redirect (post/redirect/get). Every route requires a housing role
(sign-in is the shared ``/sign-in``); the team is the signed-in user's organisation,
and another team's referral is 404, exactly like one that does not exist, so ids
cannot be probed. Only a housing manager sets the team's capacity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI
from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from healthy_homes.audit import Actor
from healthy_homes.clock import Clock
from healthy_homes.housing import workflow
from healthy_homes.housing.resources import OUTCOMES
from healthy_homes.housing.teams import capacity_of, set_capacity
from healthy_homes.store.db import Database
from healthy_homes.store.models import HousingReferral, HousingTeam
from healthy_homes.web.access import Principal, Role, require_role
from healthy_homes.web.templating import render

log = logging.getLogger(__name__)
PRIORITY_TEXT = {"stat": "Immediate", "asap": "As soon as possible", "urgent": "Urgent"}
STATUS_TEXT = {
    "received": ("New", "blue"),
    "accepted": ("Accepted", "aqua-green"),
    "in-progress": ("In progress", "yellow"),
    "completed": ("Completed", "green"),
    "rejected": ("Declined", "grey"),
    "failed": ("Closed without outcome", "grey"),
    "cancelled": ("Withdrawn", "grey"),
}
DONE_TEXT = {
    "accepted": "Referral accepted.",
    "declined": "Referral declined. The practice can see the reason.",
    "contact": "Contact recorded.",
    "visit": "Visit recorded.",
    "outcome": "Outcome recorded. The practice can see it.",
    "capacity": "Capacity saved.",
}


@dataclass
class InboxPages:
    """What the pages need: the database, the clock, templates, cookie policy."""

    db: Database
    clock: Clock
    env: Environment


def _state(request: Request) -> InboxPages:
    pages: InboxPages = request.app.state.inbox
    return pages


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    return parse_qs(body.decode("utf-8", "replace"), max_num_fields=50)


def _one(form: dict[str, list[str]], name: str, limit: int = 1000) -> str:
    return " ".join((form.get(name) or [""])[0].split())[:limit]


def _age_days(row: HousingReferral, now: datetime) -> int:
    return max(0, (now - row.received_at).days)


def _view(row: HousingReferral, now: datetime, overdue_days: int) -> dict[str, Any]:
    ds = row.dataset
    age = _age_days(row, now)
    label, colour = STATUS_TEXT.get(row.status, (row.status, "grey"))
    return {
        "id": row.id,
        "name": f"{ds.get('given_name', '')} {ds.get('family_name', '')}".strip() or "Withdrawn",
        "ds": ds,
        "age": age,
        "overdue": row.status in workflow.OPEN and age >= overdue_days,
        "priority": PRIORITY_TEXT.get(row.priority),
        "status": row.status,
        "statusText": label,
        "statusColour": colour,
        "reason": row.status_reason,
        "received": row.received_at.strftime("%d %b %Y"),
        "outputs": [OUTCOMES.get(o, o) for o in row.outputs],
        "consent": row.consent,
    }


@dataclass(frozen=True)
class Officer:
    """The signed-in officer or manager, with their team's name for the page header."""

    principal: Principal
    team_name: str

    @property
    def team_id(self) -> str:
        """Their team: the only one whose referrals they can see."""
        return self.principal.organisation

    @property
    def display_name(self) -> str:
        """Their name, as the header and the activity log show it."""
        return self.principal.display_name

    @property
    def manager(self) -> bool:
        """Whether they may change the team's settings."""
        return self.principal.role == Role.HOUSING_MANAGER


ANY_HOUSING = Depends(require_role(Role.HOUSING_OFFICER, Role.HOUSING_MANAGER))
MANAGER = Depends(require_role(Role.HOUSING_MANAGER))


def _officer(pages: InboxPages, principal: Principal) -> Officer:
    with pages.db.session() as session:
        team = session.get(HousingTeam, principal.organisation)
    return Officer(principal, team.name if team else principal.organisation)


def _not_found(request: Request, pages: InboxPages, officer: Officer) -> Response:
    context = {"pageTitle": "Page not found", "clinician": officer}
    return render(pages.env, request, "housing/not-found.html", context, status_code=404)


async def queue(request: Request, principal: Principal = ANY_HOUSING) -> Response:
    """Open referrals, most urgent then oldest first; recently closed ones below."""
    pages = _state(request)
    officer = _officer(pages, principal)
    now = pages.clock.now()
    with pages.db.session() as session:
        team = session.get(HousingTeam, officer.team_id)
        assert team is not None
        rows = workflow.queue(session, officer.team_id)
        done = workflow.closed(session, officer.team_id)
        capacity = capacity_of(session, team, now)
    context = {
        "pageTitle": f"Referrals for {officer.team_name}",
        "clinician": officer,
        "team": team,
        "open": [_view(r, now, team.overdue_days) for r in rows],
        "closed": [_view(r, now, team.overdue_days) for r in done],
        "capacity": capacity,
        "done": DONE_TEXT.get(request.query_params.get("done", "")),
    }
    return render(pages.env, request, "housing/queue.html", context)


async def detail(request: Request, principal: Principal = ANY_HOUSING) -> Response:
    """One referral: the minimum dataset, what has been done, and the next actions."""
    pages = _state(request)
    officer = _officer(pages, principal)
    now = pages.clock.now()
    with pages.db.session() as session:
        row = workflow.team_referral(session, officer.team_id, request.path_params["id"])
        team = session.get(HousingTeam, officer.team_id)
        activity = workflow.activity(session, row.id) if row else []
    if row is None or team is None:
        return _not_found(request, pages, officer)
    context = {
        "pageTitle": "Referral",
        "clinician": officer,
        "r": _view(row, now, team.overdue_days),
        "activity": [
            {"kind": a.kind, "text": a.text, "by": a.by, "at": a.at.strftime("%d %b %Y %H:%M")}
            for a in activity
        ],
        "declineReasons": workflow.DECLINE_REASONS,
        "outcomes": OUTCOMES,
        "done": DONE_TEXT.get(request.query_params.get("done", "")),
        "error": request.query_params.get("error"),
    }
    return render(pages.env, request, "housing/detail.html", context)


async def act(request: Request, principal: Principal = ANY_HOUSING) -> Response:
    """Accept, decline, record contact, a visit or the outcome."""
    pages = _state(request)
    officer = _officer(pages, principal)
    action = request.path_params["action"]
    form = await _form(request)
    now = pages.clock.now()
    referral_id = request.path_params["id"]
    try:
        with pages.db.session() as session:
            row = workflow.team_referral(session, officer.team_id, referral_id)
            if row is None:
                return _not_found(request, pages, officer)
            by = workflow.By(officer.display_name, Actor(principal.user_id, principal.role))
            if action == "accept":
                workflow.accept(session, row, by, now)
            elif action == "decline":
                detail = _one(form, "detail", 400)
                workflow.decline(session, row, _one(form, "reason", 40), detail, by, now)
            elif action in workflow.ACTIVITY_KINDS:
                workflow.record(session, row, action, _one(form, "text"), by, now)
            elif action == "outcome":
                outcomes = form.get("outcome") or []
                workflow.complete(session, row, outcomes, _one(form, "note", 500), by, now)
            else:
                return _not_found(request, pages, officer)
    except ValueError:
        # A missing reason, outcome or description: back to the form, which says so.
        return RedirectResponse(f"/referrals/{referral_id}?error={action}", status_code=303)
    except workflow.NotAllowed:
        return RedirectResponse(f"/referrals/{referral_id}?error=state", status_code=303)
    done = {"decline": "declined"}.get(action, action)
    log.info("referral %s: %s by team %s", referral_id, done, officer.team_id)
    return RedirectResponse(f"/referrals/{referral_id}?done={done}", status_code=303)


async def capacity_page(request: Request, principal: Principal = MANAGER) -> Response:
    """The team's capacity setting and this week's figures."""
    pages = _state(request)
    officer = _officer(pages, principal)
    with pages.db.session() as session:
        team = session.get(HousingTeam, officer.team_id)
        assert team is not None
        capacity = capacity_of(session, team, pages.clock.now())
    context = {
        "pageTitle": "Capacity",
        "clinician": officer,
        "team": team,
        "capacity": capacity,
        "error": request.query_params.get("error"),
    }
    return render(pages.env, request, "housing/capacity.html", context)


async def save_capacity(request: Request, principal: Principal = MANAGER) -> Response:
    """Set new referrals per week (blank: no limit)."""
    pages = _state(request)
    officer = _officer(pages, principal)
    form = await _form(request)
    raw = _one(form, "per_week", 6)
    try:
        per_week = int(raw) if raw else None
        if per_week is not None and not 0 <= per_week <= 10_000:
            raise ValueError
    except ValueError:
        return RedirectResponse("/capacity?error=number", status_code=303)
    with pages.db.session() as session:
        by = Actor(principal.user_id, principal.role)
        set_capacity(session, officer.team_id, per_week, by=by, clock=pages.clock)
    return RedirectResponse("/?done=capacity", status_code=303)


def install_pages(app: FastAPI, pages: InboxPages) -> None:
    """Add the officers' pages to ``app``."""
    app.state.inbox = pages
    app.add_api_route("/", queue, methods=["GET"], include_in_schema=False)
    app.add_api_route("/capacity", capacity_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/capacity", save_capacity, methods=["POST"], include_in_schema=False)
    app.add_api_route("/referrals/{id}", detail, methods=["GET"], include_in_schema=False)
    app.add_api_route("/referrals/{id}/{action}", act, methods=["POST"], include_in_schema=False)
