"""Receiving the connector's referral transaction: keep the minimum dataset, nothing more.

The Bundle is the SDOH Clinical Care referral (Patient, Consent, ServiceRequest, Task,
each a conditional create on the sender's identifiers). We de-duplicate on the referral
identifier: a retried transaction finds the referral already here and answers with the
existing entries (200 OK) without creating anything. A Bundle without an active permit
Consent is refused whole. See https://hl7.org/fhir/R4/http.html#transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from healthy_homes.fhir.systems import HH_CONSENT_ID, HH_REFERRAL_ID, NHS_NUMBER
from healthy_homes.housing.resources import entry_ids, location
from healthy_homes.store.db import Database
from healthy_homes.store.models import HousingReferral

JSON = dict[str, Any]
PRIORITIES = ("routine", "urgent", "asap", "stat")
_MAX_TEXT = 500


class Refused(Exception):
    """The Bundle cannot be accepted: ``status`` and an OperationOutcome ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _ident(resource: JSON, system: str) -> str | None:
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            return str(value)[:64] if value else None
    return None


def _text(value: object, limit: int = _MAX_TEXT) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join(value.split())
    return cleaned[:limit] or None


def _by_type(bundle: JSON) -> dict[str, list[JSON]]:
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise Refused(400, "invalid", "expected a transaction Bundle")
    found: dict[str, list[JSON]] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise Refused(400, "invalid", "every entry needs a resource")
        method = (entry.get("request") or {}).get("method")
        if method != "POST":
            raise Refused(400, "not-supported", "only conditional creates (POST) are accepted")
        found.setdefault(str(resource.get("resourceType")), []).append(resource)
    for needed in ("Patient", "ServiceRequest", "Task"):
        if len(found.get(needed, [])) != 1:
            raise Refused(400, "required", f"the referral needs exactly one {needed}")
    return found


def _permit_consent(consents: list[JSON]) -> JSON:
    for consent in consents:
        provision = consent.get("provision") or {}
        if consent.get("status") == "active" and provision.get("type") == "permit":
            return consent
    raise Refused(
        422,
        "business-rule",
        "refused: the referral carries no active Consent permitting it to be shared with "
        "this service; nothing was stored",
    )


def _patient(patient: JSON) -> JSON:
    name = (patient.get("name") or [{}])[0]
    address = next(
        (a for a in patient.get("address") or [] if a.get("use") == "home"),
        (patient.get("address") or [{}])[0],
    )
    phone = next(
        (t.get("value") for t in patient.get("telecom") or [] if t.get("system") == "phone"),
        None,
    )
    nhs = _ident(patient, NHS_NUMBER)
    if nhs is None:
        raise Refused(400, "required", "the Patient needs an NHS number")
    return {
        "nhs_number": nhs,
        "given_name": _text(" ".join(str(g) for g in name.get("given") or []), 120) or "",
        "family_name": _text(name.get("family"), 120) or "",
        "birth_date": _text(patient.get("birthDate"), 10),
        "address_lines": [x for x in (_text(v, 120) for v in address.get("line") or []) if x],
        "city": _text(address.get("city"), 80),
        "postcode": _text(address.get("postalCode"), 10),
        "phone": _text(phone, 40),
    }


@dataclass(frozen=True)
class Received:
    """A referral stored (or found again) and the transaction-response for it."""

    referral: HousingReferral
    created: bool
    response: JSON


def parse(bundle: JSON) -> tuple[str, JSON, JSON, str, str | None]:
    """(referral id, dataset, consent summary, priority, authoredOn) from a Bundle."""
    found = _by_type(bundle)
    consent = _permit_consent(found.get("Consent", []))
    request, task = found["ServiceRequest"][0], found["Task"][0]
    referral_id = _ident(request, HH_REFERRAL_ID) or _ident(task, HH_REFERRAL_ID)
    if referral_id is None:
        raise Refused(
            400, "required", f"the ServiceRequest needs an identifier in {HH_REFERRAL_ID}"
        )
    requester = request.get("requester") or {}
    dataset = _patient(found["Patient"][0]) | {
        "practice_ods": _text((requester.get("identifier") or {}).get("value"), 10),
        "referrer": _text(requester.get("display"), 120),
        "reason": _text((request.get("code") or {}).get("text"), 200),
        "notes": [x for x in (_text(n.get("text")) for n in request.get("note") or []) if x],
    }
    summary = {
        "identifier": _ident(consent, HH_CONSENT_ID),
        "dateTime": _text(consent.get("dateTime"), 40),
        "source": _text((consent.get("sourceAttachment") or {}).get("title"), 200),
    }
    priority = request.get("priority") if request.get("priority") in PRIORITIES else "routine"
    return referral_id, dataset, summary, str(priority), _text(request.get("authoredOn"), 40)


def transaction_response(bundle: JSON, row: HousingReferral, created: bool) -> JSON:
    """One response entry per request entry, in order (201 created / 200 already here)."""
    ids = entry_ids(row)
    status = "201 Created" if created else "200 OK"
    entries = []
    for entry in bundle.get("entry") or []:
        kind = str(entry["resource"].get("resourceType"))
        version = row.version if kind == "Task" else 1
        entries.append(
            {
                "response": {
                    "status": status,
                    "location": location(kind, ids[kind], version),
                    "etag": f'W/"{version}"',
                }
            }
        )
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def store_referral(
    db: Database,
    team_id: str,
    referral_id: str,
    dataset: JSON,
    consent: JSON,
    *,
    priority: str,
    authored: str | None,
    now: datetime,
) -> tuple[HousingReferral, bool]:
    """Keep a referral for ``team_id`` unless it is already here: (row, created).

    The one place referrals enter a team's queue, whatever they came by (FHIR
    transaction or email): de-duplicated on the sender's referral id.
    """
    query = select(HousingReferral).where(
        HousingReferral.team_id == team_id,
        HousingReferral.referral_identifier == referral_id,
    )
    with db.session() as session:
        existing = session.exec(query).first()
    if existing is not None:
        return existing, False
    row = HousingReferral(
        team_id=team_id,
        referral_identifier=referral_id,
        dataset=dataset,
        consent=consent,
        priority=priority,
        authored_on=authored,
        received_at=now,
        status="received",
        updated_at=now,
    )
    try:
        with db.session() as session:
            session.add(row)
    except IntegrityError:
        # The same referral arrived twice at once: the other request stored it.
        with db.session() as session:
            return session.exec(query).one(), False
    return row, True


def receive(db: Database, team_id: str, bundle: JSON, now: datetime) -> Received:
    """Store a referral for ``team_id`` unless it is already here; refuse without consent."""
    referral_id, dataset, consent, priority, authored = parse(bundle)
    row, created = store_referral(
        db, team_id, referral_id, dataset, consent, priority=priority, authored=authored, now=now
    )
    return Received(row, created, transaction_response(bundle, row, created))
