"""The FHIR resources a team's base answers with, rebuilt from what we keep.

Only the minimum dataset is stored, so what is read back is exactly that: the Task
(the part the sender polls), its ServiceRequest, the Patient and the Consent summary.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.task import Task

from healthy_homes.fhir.resources import to_json
from healthy_homes.fhir.systems import HH_BASE, HH_REFERRAL_ID, NHS_NUMBER, ODS_ORGANISATION
from healthy_homes.store.models import HousingReferral

JSON = dict[str, Any]
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
RESULTING_ACTIVITY = {
    "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
    "code": "resulting-activity",
    "display": "Performed Activity",
}
OUTCOME_SYSTEM = f"{HH_BASE}/CodeSystem/housing-outcome"
#: What a visit achieved: what the practice sees in ``Task.output``.
OUTCOMES: dict[str, str] = {
    "heating-fixed": "Heating fixed or improved",
    "damp-treated": "Damp or mould treated",
    "falls-hazards-removed": "Falls hazards removed",
    "repairs-arranged": "Repairs arranged",
    "energy-advice": "Energy and benefits advice given",
    "onward-referral": "Onward referrals made",
    "no-action-needed": "No action needed",
}


def entry_ids(row: HousingReferral) -> dict[str, str]:
    """Logical ids of the referral's resources on the team's base."""
    return {
        "Task": row.id,
        "ServiceRequest": row.id,
        "Patient": f"{row.id}-p",
        "Consent": f"{row.id}-c",
    }


def location(kind: str, logical_id: str, version: int) -> str:
    """A versioned relative location, as a transaction-response entry gives it."""
    return f"{kind}/{logical_id}/_history/{version}"


def _meta(version: int, row: HousingReferral) -> JSON:
    return {"versionId": str(version), "lastUpdated": row.updated_at.isoformat()}


def task(row: HousingReferral) -> JSON:
    """The referral's Task as it stands (status, reason, period and outputs)."""
    ident = [{"system": HH_REFERRAL_ID, "value": row.referral_identifier}]
    ds = row.dataset
    resource: JSON = {
        "resourceType": "Task",
        "id": row.id,
        "meta": _meta(row.version, row),
        "identifier": ident,
        "status": row.status,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{row.id}"},
        "for": {"reference": f"Patient/{row.id}-p"},
        "lastModified": row.updated_at.isoformat(),
        "owner": {"display": row.team_id},
    }
    if row.authored_on:
        resource["authoredOn"] = row.authored_on
    if ds.get("practice_ods"):
        resource["requester"] = {
            "identifier": {"system": ODS_ORGANISATION, "value": ds["practice_ods"]}
        }
    if row.status_reason:
        resource["statusReason"] = {"text": row.status_reason}
    period: JSON = {}
    if row.started_at:
        period["start"] = row.started_at.isoformat()
    if row.ended_at:
        period["end"] = row.ended_at.isoformat()
    if period:
        resource["executionPeriod"] = period
    if row.outputs:
        resource["output"] = [
            {
                "type": {"coding": [RESULTING_ACTIVITY]},
                "valueCodeableConcept": {
                    "coding": [{"system": OUTCOME_SYSTEM, "code": code, "display": OUTCOMES[code]}]
                    if code in OUTCOMES
                    else [],
                    "text": OUTCOMES.get(code, code),
                },
            }
            for code in row.outputs
        ]
    return to_json(Task.model_validate(resource))


def service_request(row: HousingReferral) -> JSON:
    """The receiver's copy of the referral (only what was kept)."""
    ds = row.dataset
    status = {"completed": "completed", "cancelled": "revoked"}.get(row.status, "active")
    resource: JSON = {
        "resourceType": "ServiceRequest",
        "id": row.id,
        "meta": _meta(1, row),
        "identifier": [{"system": HH_REFERRAL_ID, "value": row.referral_identifier}],
        "status": status,
        "intent": "order",
        "priority": row.priority,
        "subject": {"reference": f"Patient/{row.id}-p"},
        "supportingInfo": [{"reference": f"Consent/{row.id}-c"}],
    }
    if ds.get("reason"):
        resource["code"] = {"text": ds["reason"]}
    if ds.get("notes"):
        resource["note"] = [{"text": n} for n in ds["notes"]]
    return resource


def patient(row: HousingReferral) -> JSON:
    """The Patient of the minimum dataset."""
    ds = row.dataset
    address: JSON = {"use": "home", "line": ds.get("address_lines") or []}
    for key, field in (("city", "city"), ("postalCode", "postcode")):
        if ds.get(field):
            address[key] = ds[field]
    resource: JSON = {
        "resourceType": "Patient",
        "id": f"{row.id}-p",
        "meta": _meta(1, row),
        "identifier": [{"system": NHS_NUMBER, "value": ds.get("nhs_number")}],
        "name": [{"family": ds.get("family_name"), "given": str(ds.get("given_name")).split()}],
        "address": [address],
    }
    if ds.get("birth_date"):
        resource["birthDate"] = ds["birth_date"]
    if ds.get("phone"):
        resource["telecom"] = [{"system": "phone", "value": ds["phone"]}]
    return resource


READERS = {"Task": task, "ServiceRequest": service_request, "Patient": patient}
