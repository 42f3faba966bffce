"""The FHIR Flag we write into the practice record."""

from __future__ import annotations

from datetime import datetime

from fhir.resources.R4B.flag import Flag

from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import to_json
from healthy_homes.fhir.systems import FLAG_CATEGORY, HH_CODES, HH_FLAG_ID, ODS_ORGANISATION

FLAG_CODE = "housing-referral-offer"
FLAG_TEXT = "Offer a Healthy Homes housing referral (cold, damp or hazards at home)"


def build_flag(
    *,
    flag_id: str,
    patient_id: str,
    practice_ods: str,
    start: datetime,
    active: bool = True,
    end: datetime | None = None,
) -> JSON:
    """A Flag carrying our identifier, so creating it twice finds the first."""
    period = {"start": start.isoformat()}
    if end is not None:
        period["end"] = end.isoformat()
    flag = Flag.model_validate(
        {
            "resourceType": "Flag",
            "identifier": [{"system": HH_FLAG_ID, "value": flag_id}],
            "status": "active" if active else "inactive",
            "category": [
                {
                    "coding": [
                        {"system": FLAG_CATEGORY, "code": "admin", "display": "Administrative"}
                    ]
                }
            ],
            "code": {
                "coding": [{"system": HH_CODES, "code": FLAG_CODE, "display": FLAG_TEXT}],
                "text": FLAG_TEXT,
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": period,
            "author": {"identifier": {"system": ODS_ORGANISATION, "value": practice_ods}},
        }
    )
    return to_json(flag)


def flag_search_key(flag_id: str) -> str:
    """The ``If-None-Exist`` query that finds our Flag again."""
    return f"identifier={HH_FLAG_ID}|{flag_id}"


def inactivated(current: JSON, end: datetime) -> JSON | None:
    """``current`` made inactive with its period ended; None when it already is."""
    if current.get("status") in ("inactive", "entered-in-error"):
        return None
    period = {**(current.get("period") or {})}
    period.setdefault("end", end.isoformat())
    return {**current, "status": "inactive", "period": period}
