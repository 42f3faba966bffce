"""The dialog's actions. Each is one POST with the CSRF token, safe to repeat."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from healthy_homes.consent.wording import consent_wording
from healthy_homes.errors import ConsentError, RoutingError
from healthy_homes.flags.popup.forms import ConsentIn, DeclineIn, NotAppropriateIn, PreviewIn
from healthy_homes.flags.popup.state import account_of, actions_of, clinician_of, state_of
from healthy_homes.referrals.routing import RouteOutcome, Routing
from healthy_homes.web.access import Role, require_role

router = APIRouter(
    prefix="/api/flags/{flag_id}",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.CLINICIAN))],
)


@router.post("/shown")
async def shown(flag_id: str, request: Request) -> dict[str, str]:
    """The dialog is in front of the clinician: the flag moves to 'shown'."""
    clinician = clinician_of(request)
    flag = actions_of(request).mark_shown(flag_id, by=clinician.recorded_as)
    return {"status": flag.status}


def routing_json(routing: Routing, wording_version: str) -> dict[str, object]:
    """Where the referral would go (service, remit, consent wording) or why nowhere."""
    service = routing.service
    return {
        "outcome": routing.outcome.value,
        "canRefer": routing.can_refer,
        "canAsk": routing.can_ask,
        "message": routing.message,
        "sentTo": service.name if service else None,
        "remit": service.remit if service else None,
        "wording": consent_wording(service.name, wording_version) if service else None,
    }


@router.post("/route")
async def route(flag_id: str, body: PreviewIn, request: Request) -> dict[str, object]:
    """Before consent: which housing service this patient would be referred to, or why none."""
    clinician = clinician_of(request)
    actions = actions_of(request)
    routing = await actions.route(flag_id, form=body.form, recorded_by=clinician.recorded_as)
    return routing_json(routing, actions.wording_version)


@router.post("/preview")
async def preview(flag_id: str, body: PreviewIn, request: Request) -> dict[str, object]:
    """Exactly what the routed service would receive, as lines to read to the patient.

    A patient no service takes gets no lines, and the routing says why.
    """
    clinician = clinician_of(request)
    actions = actions_of(request)
    try:
        built = await actions.preview(flag_id, recorded_by=clinician.recorded_as, form=body.form)
    except RoutingError:
        routing = await actions.route(flag_id, form=body.form, recorded_by=clinician.recorded_as)
        return {
            "lines": [],
            "sentTo": None,
            "routing": routing_json(routing, actions.wording_version),
        }
    routed = Routing(RouteOutcome.ROUTED, built.service)
    return {
        "lines": [[label, value] for label, value in built.lines],
        "sentTo": built.service.name,
        "routing": routing_json(routed, actions.wording_version),
    }


@router.post("/consent")
async def consent(flag_id: str, body: ConsentIn, request: Request) -> dict[str, object]:
    """Consent (verbal or written) given to the signed-in clinician: record it, refer, send."""
    clinician = clinician_of(request)
    actions = actions_of(request)
    if body.wording_version != actions.wording_version:
        raise ConsentError("the consent wording has changed since the page was loaded; reload")
    done = await actions.consent(
        flag_id,
        recorded_by=clinician.recorded_as,
        method=body.method,
        form=body.form,
        referrer=account_of(request),
    )
    state_of(request).board.answer(flag_id)
    name = (done.service or actions.service).name
    if done.sent:
        message = f"Consent recorded and the referral sent to {name}."
    else:
        message = f"Consent recorded. The referral will be sent to {name} automatically."
    return {"sent": done.sent, "message": message, "sentTo": name}


@router.post("/decline")
async def decline(flag_id: str, body: DeclineIn, request: Request) -> dict[str, object]:
    """Declined, with the reason."""
    clinician = clinician_of(request)
    actions = actions_of(request)
    await actions.decline(flag_id, recorded_by=clinician.recorded_as, reason=body.text())
    state_of(request).board.answer(flag_id)
    return {"message": f"Decline recorded: {body.text()}."}


@router.post("/snooze")
async def snooze(flag_id: str, request: Request) -> dict[str, object]:
    """Discuss next time: hidden until the patient's next appointment."""
    clinician = clinician_of(request)
    await actions_of(request).discuss_next_time(flag_id, recorded_by=clinician.recorded_as)
    state_of(request).board.answer(flag_id)
    return {"message": "We will prompt you again at the patient's next appointment."}


@router.post("/not-appropriate")
async def not_appropriate(
    flag_id: str, body: NotAppropriateIn, request: Request
) -> dict[str, object]:
    """Not appropriate for this patient, in the clinician's judgement (reason optional)."""
    clinician = clinician_of(request)
    reason = body.text()
    await actions_of(request).not_appropriate(
        flag_id, recorded_by=clinician.recorded_as, reason=reason
    )
    state_of(request).board.answer(flag_id)
    message = "Recorded as not appropriate for this patient"
    return {"message": f"{message}: {reason}." if reason else f"{message}."}


@router.post("/dismiss")
async def dismiss(flag_id: str, request: Request) -> dict[str, object]:
    """Dismissed without an offer: prompted again only after the dismissal window."""
    clinician = clinician_of(request)
    actions = actions_of(request)
    await actions.dismiss(flag_id, recorded_by=clinician.recorded_as)
    state_of(request).board.answer(flag_id)
    days = actions.rules.dismiss_suppression_days
    return {"message": f"This patient will not be prompted again for {days} days."}
