"""The users page: a practice admin manages their practice's people, a manager their team's.

Each sees and changes only their own organisation's users, and only the roles of their
side (an admin adds clinicians and admins; a housing manager adds officers and
managers). Another organisation's username is "not found". A new user gets the initial
password typed here and can be given a new one with ``healthy-homes users set-password``.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException
from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from healthy_homes.accounts import users
from healthy_homes.clock import Clock
from healthy_homes.errors import AccessError
from healthy_homes.store.db import Database
from healthy_homes.web.access import HOUSING_ROLES, PRACTICE_ROLES, Principal, Role, require_role
from healthy_homes.web.templating import render

PATH = "/users"
#: Who may manage people, and which roles they may give.
MANAGES = {Role.PRACTICE_ADMIN: PRACTICE_ROLES, Role.HOUSING_MANAGER: HOUSING_ROLES}
ROLE_TEXT = {
    Role.CLINICIAN: "Clinician",
    Role.PRACTICE_ADMIN: "Practice admin",
    Role.HOUSING_OFFICER: "Housing officer",
    Role.HOUSING_MANAGER: "Housing manager",
}


def users_router(db: Database, clock: Clock, env: Environment, manager: Role) -> APIRouter:
    """``/users`` for ``manager`` (practice admin or housing manager) of one organisation."""
    allowed = MANAGES[manager]
    router = APIRouter(include_in_schema=False, dependencies=[Depends(require_role(manager))])
    guard = Depends(require_role(manager))

    def page(request: Request, me: Principal, status: int = 200, error: str = "") -> Response:
        with db.session() as session:
            people = users.list_users(session, me.organisation)
        context = {
            "pageTitle": "Users",
            "clinician": me,
            "people": [
                {
                    "username": u.username,
                    "name": u.display_name,
                    "role": ROLE_TEXT.get(Role(u.role), u.role),
                    "disabled": u.disabled,
                    "me": u.id == me.user_id,
                }
                for u in people
            ],
            "roles": [(r.value, ROLE_TEXT[r]) for r in sorted(allowed)],
            "error": error,
            "done": request.query_params.get("done", "")[:40],
        }
        return render(env, request, "accounts/users.html", context, status_code=status)

    @router.get(PATH)
    def listing(request: Request, me: Principal = guard) -> Response:
        return page(request, me)

    @router.post(PATH)
    async def add(request: Request, me: Principal = guard) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)

        def field(name: str, limit: int = 120) -> str:
            return (form.get(name) or [""])[0][:limit]

        try:
            role = users.parse_role(field("role", 30))
            if role not in allowed:
                raise AccessError("choose one of the roles listed")
            with db.session() as session:
                users.add_user(
                    session,
                    username=field("username").strip(),
                    display_name=field("name"),
                    role=role,
                    organisation=me.organisation,
                    password=field("password", users.MAX_PASSWORD + 1),
                    now=clock.now(),
                )
        except AccessError as exc:
            return page(request, me, 400, exc.message)
        return RedirectResponse(f"{PATH}?done=added", status_code=303)

    def _change(username: str, me: Principal, disabled: bool) -> Response:
        with db.session() as session:
            user = users.find(session, username)
            # Another organisation's people are answered exactly like nobody.
            if user is None or user.organisation != me.organisation:
                raise HTTPException(status_code=404, detail="no such user")
            if user.id == me.user_id:
                raise HTTPException(status_code=409, detail="you cannot disable yourself")
            users.set_disabled(session, username, disabled)
        return RedirectResponse(f"{PATH}?done={'disabled' if disabled else 'enabled'}", 303)

    @router.post(PATH + "/{username}/disable")
    def disable(username: str, me: Principal = guard) -> Response:
        return _change(username, me, True)

    @router.post(PATH + "/{username}/enable")
    def enable(username: str, me: Principal = guard) -> Response:
        return _change(username, me, False)

    return router
