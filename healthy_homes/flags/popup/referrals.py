"""'Referrals you made': what became of each referral the signed-in clinician made.

Each row is a referral this clinician made at this practice, found by their user
account (``Referral.referred_by_user``), never by name: two clinicians may share a
display name. Referrals made before migration 0013, or from a CDS Hooks card whose EHR
user matched no single account, are nobody's here (practice admins still find them on
the outbox page). For each: the housing service it went to, when it was sent, whether
the housing side has acknowledged it, its status (the closed loop's ``record_status``
keeps ``Referral.task_status`` up to date, whatever the transport), what the housing
team said with it (the reason for a decline, the outcome of a visit:
``Referral.status_reason`` and ``Referral.outcome``, their own words) and whether the
acknowledgement is overdue (past the service's ``ack_working_days``, or an
``ack-overdue`` alert was raised).
Nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.flags.popup.prompts import long_date
from healthy_homes.flags.popup.state import NotSignedIn, account_of, clinician_of, state_of
from healthy_homes.referrals.loop import ALERT_KIND, READABLE, ack_due, is_acknowledged
from healthy_homes.store.db import Database
from healthy_homes.store.models import Alert, Referral, ReferralStatus
from healthy_homes.web.access import Role, require_role
from healthy_homes.web.templating import render

#: The most a page lists (newest first).
LIMIT = 200
NOT_SENT = {
    ReferralStatus.PENDING: "Waiting to be sent",
    ReferralStatus.FAILED: "Not sent yet: the connector keeps trying",
    ReferralStatus.CANCELLED: "Cancelled: consent withdrawn",
}

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_role(Role.CLINICIAN))])


@dataclass(frozen=True)
class ReferralRow:
    """One referral as the referring clinician sees it (plain strings for the page)."""

    referral_id: str
    patient: str
    born: str
    service: str
    sent: str
    acknowledged: str
    status: str
    said: str
    overdue: bool
    due: str


def _service_name(services: dict[str, HousingServiceConfig], service_id: str) -> str:
    found = services.get(service_id)
    return found.name if found else service_id


def _when(referral: Referral, zone: ZoneInfo) -> str:
    sent = referral.sent_at
    return sent.astimezone(zone).strftime("%d %b %Y %H:%M") if sent else "Not sent"


def _status(referral: Referral) -> str:
    if referral.status != ReferralStatus.SENT:
        return NOT_SENT.get(ReferralStatus(referral.status), str(referral.status))
    return READABLE.get(referral.task_status, referral.task_status or "")


def _said(referral: Referral) -> str:
    parts = [
        f"{label}: {text}"
        for label, text in (("Reason", referral.status_reason), ("Outcome", referral.outcome))
        if text
    ]
    return ". ".join(parts)


def made_by(practice: str, user_id: str) -> SelectOfScalar[Referral]:
    """The referrals one clinician made at one practice: by account, never by name (H25)."""
    return select(Referral).where(
        Referral.practice_ods == practice, Referral.referred_by_user == user_id
    )


def referrals_made(
    db: Database,
    *,
    practice: str,
    user_id: str,
    services: Sequence[HousingServiceConfig],
    clock: Clock,
    zone: ZoneInfo,
) -> list[ReferralRow]:
    """The clinician's referrals at this practice, newest first, with status and deadlines."""
    by_id = {s.id: s for s in services}
    with db.session() as session:
        query = made_by(practice, user_id)
        found = session.exec(query.order_by(col(Referral.created_at).desc()).limit(LIMIT)).all()
        ids = [r.id for r in found]
        alerted = set(
            session.exec(
                select(Alert.subject).where(Alert.kind == ALERT_KIND, col(Alert.subject).in_(ids))
            ).all()
        )
    today = clock.now().astimezone(zone).date()
    rows = []
    for referral in found:
        service = by_id.get(referral.housing_service_id)
        # A recalled referral was sent, but nothing is owed on it any more.
        live = referral.sent_at if referral.status == ReferralStatus.SENT else None
        acknowledged = bool(live and service and is_acknowledged(referral.task_status, service))
        due = ack_due(live, service, zone) if live and service else None
        late = due is not None and not acknowledged and today > due
        dataset = referral.dataset or {}
        rows.append(
            ReferralRow(
                referral_id=referral.id,
                patient=" ".join(
                    p for p in (dataset.get("given_name"), dataset.get("family_name")) if p
                ),
                born=long_date(dataset.get("birth_date")),
                service=_service_name(by_id, referral.housing_service_id),
                sent=_when(referral, zone),
                acknowledged="Yes" if acknowledged else ("No" if live else ""),
                status=_status(referral),
                said=_said(referral),
                overdue=bool(live and not acknowledged and (late or referral.id in alerted)),
                due=due.strftime("%d %b %Y") if due else "",
            )
        )
    return rows


@router.get("/referrals")
async def referrals_page(request: Request) -> Response:
    """The 'Referrals you made' page of the signed-in clinician."""
    state = state_of(request)
    try:
        clinician = clinician_of(request)
        account = account_of(request)
    except NotSignedIn:
        return render(state.env, request, "popup/signed-out.html", status_code=401)
    actions = state.actions
    if actions is None:
        raise RuntimeError("the pop-up app has not started")
    rows = referrals_made(
        actions.db,
        practice=state.config.practice.ods_code,
        user_id=account,
        services=state.config.referral_services,
        clock=actions.clock,
        zone=state.config.zone,
    )
    context = {
        "pageTitle": "Referrals you made",
        "clinician": clinician,
        "practice": state.config.practice,
        "rows": rows,
        "overdue": sum(1 for r in rows if r.overdue),
    }
    return render(state.env, request, "popup/referrals.html", context)
