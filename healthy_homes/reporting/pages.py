"""The funnel report page: the table, the chart and a CSV download, for the practice admin.

Counts only, never a patient. Mounted in the practice web app beside the outbox page and
guarded the same way: a signed-in practice admin, who sees their own practice only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from fastapi import APIRouter, Depends, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from healthy_homes.clock import Clock
from healthy_homes.reporting.chart import render_chart
from healthy_homes.reporting.export import HEADER, TABLE_COLUMNS, cells, to_csv
from healthy_homes.reporting.funnel import FunnelRow, funnel
from healthy_homes.store.db import Database
from healthy_homes.web.access import Principal, Role, require_role
from healthy_homes.web.templating import make_environment, render

PREFIX = "/reports/funnel"
ADMIN = Depends(require_role(Role.PRACTICE_ADMIN))


def _period(clock: Clock, start: str | None, end: str | None) -> tuple[date, date]:
    """The months asked for, else the twelve months up to today."""
    today = clock.now().date()
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else date(last.year - 1, last.month, 1)
    except ValueError:
        raise HTTPException(status_code=422, detail="dates are YYYY-MM-DD") from None
    if first > last:
        raise HTTPException(status_code=422, detail="'from' is after 'to'")
    return first, last


def funnel_router(
    db: Database, clock: Clock, *, receipt_acknowledges: Collection[str] = ()
) -> APIRouter:
    """Routes under ``/reports/funnel``: the page, ``.csv`` and ``.svg`` (practice admins).

    ``receipt_acknowledges``: as for :func:`~healthy_homes.reporting.funnel.funnel`.
    """
    env = make_environment(["healthy_homes.reporting"])
    router = APIRouter(prefix=PREFIX)

    def rows_for(admin: Principal, first: date, last: date) -> list[FunnelRow]:
        return funnel(
            db,
            start=first,
            end=last,
            practices=[admin.organisation],
            receipt_acknowledges=receipt_acknowledges,
        )

    @router.get("", response_class=HTMLResponse)
    def page(
        request: Request, start: str | None = None, end: str | None = None, admin: Principal = ADMIN
    ) -> Response:
        first, last = _period(clock, start, end)
        rows = rows_for(admin, first, last)
        picked = [HEADER.index(c) for c in TABLE_COLUMNS]
        return render(
            env,
            request,
            "reporting/funnel.html",
            {
                "pageTitle": "Referral funnel",
                "clinician": admin,
                "practice": admin.organisation,
                "columns": [c.replace("_", " ") for c in TABLE_COLUMNS],
                "rows": [[cells(r)[i] for i in picked] for r in rows],
                "start": first.isoformat(),
                "end": last.isoformat(),
                "query": f"start={first.isoformat()}&end={last.isoformat()}",
                "prefix": PREFIX,
            },
        )

    @router.get(".csv")
    def csv(start: str | None = None, end: str | None = None, admin: Principal = ADMIN) -> Response:
        body = to_csv(rows_for(admin, *_period(clock, start, end)))
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="healthy-homes-funnel.csv"'},
        )

    @router.get(".svg")
    def chart(
        start: str | None = None, end: str | None = None, admin: Principal = ADMIN
    ) -> Response:
        rows = rows_for(admin, *_period(clock, start, end))
        return Response(render_chart(rows, "svg"), media_type="image/svg+xml")

    return router
