"""The referral as a FHIR transaction (SDOH Clinical Care pattern).

Patient, Consent, ServiceRequest (intent order, supportingInfo → Consent) and Task
(status requested, focus → ServiceRequest). Every entry is a conditional create on
our identifier, so a retry after a lost acknowledgement creates nothing new.
See https://hl7.org/fhir/us/sdoh-clinicalcare/ for the pattern.

The referral form's answers, when there are any, are ``ServiceRequest.note`` entries,
one per answer, each text starting with a fixed label ("Tenure: ", "Main concerns: ",
"Best contact: ", "Best times: ", "Risks to visiting staff (shared with consent): ").
Plain text keeps them readable by any receiving system without a Questionnaire.

Built as plain JSON, not through ``fhir.resources`` models: this is the delivery hot
path, and building and validating the models cost more than sending. Empty lists and
empty strings are left out, as a FHIR element may not be empty.
``tests/referrals/test_bundle.py`` proves the result validates as an R4B Bundle and
equals what the model-based builder produced.
"""

from __future__ import annotations

import re
from datetime import datetime

from healthy_homes.consent.fhir_consent import build_consent
from healthy_homes.errors import ReferralError
from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import fhir_datetime
from healthy_homes.fhir.systems import (
    HH_CODES,
    HH_CONSENT_ID,
    HH_REFERRAL_ID,
    NHS_NUMBER,
    ODS_ORGANISATION,
)
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.store.models import ConsentRecord

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
#: FHIR R4 ``date`` (year, year-month or full date).
FHIR_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
)
CATEGORY = {
    "coding": [{"system": HH_CODES, "code": "housing-referral", "display": "Housing referral"}]
}


def _put(resource: JSON, key: str, value: object) -> None:
    if value:  # FHIR has no empty elements: None, "" and [] are left out
        resource[key] = value


def _patient(ds: MinimumDataset, referral_id: str) -> JSON:
    address: JSON = {"use": "home"}
    _put(address, "line", [line for line in ds.address_lines if line])
    _put(address, "city", ds.city)
    _put(address, "postalCode", ds.postcode)
    name: JSON = {"use": "official"}
    _put(name, "family", ds.family_name)
    _put(name, "given", ds.given_name.split())
    patient: JSON = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER, "value": ds.nhs_number}],
        "name": [name],
        "address": [address],
    }
    if ds.birth_date:
        if not FHIR_DATE.fullmatch(ds.birth_date):
            # Named by field only: the value is patient data.
            raise ReferralError(
                "birth date is not a FHIR date", practice=ds.practice_ods, referral=referral_id
            )
        patient["birthDate"] = ds.birth_date
    if ds.phone:
        patient["telecom"] = [{"system": "phone", "value": ds.phone}]
    return patient


def _reference(display: str, ods: str | None) -> JSON:
    reference: JSON = {}
    if ods:
        reference["identifier"] = {"system": ODS_ORGANISATION, "value": ods}
    _put(reference, "display", display)
    return reference


def patient_full_url(referral_id: str) -> str:
    """The transaction-local URL of the referral's Patient entry."""
    return f"urn:uuid:{referral_id}-p"


def build_referral_transaction(
    *,
    referral_id: str,
    dataset: MinimumDataset,
    consent: JSON,
    consent_id: str,
    housing_ods: str | None,
    housing_name: str,
    authored: datetime,
) -> JSON:
    """The transaction Bundle that delivers one referral.

    ``consent`` must refer to the patient as :func:`patient_full_url`.
    """
    patient_url, consent_url = patient_full_url(referral_id), f"urn:uuid:{referral_id}-c"
    sr_url, task_url = f"urn:uuid:{referral_id}-s", f"urn:uuid:{referral_id}-t"
    practice: JSON = {"identifier": {"system": ODS_ORGANISATION, "value": dataset.practice_ods}}
    requester = _reference(dataset.referrer, dataset.practice_ods)
    owner = _reference(housing_name, housing_ods)
    authored_on = fhir_datetime(authored)
    service_request: JSON = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": HH_REFERRAL_ID, "value": referral_id}],
        "status": "active",
        "intent": "order",
        "category": [CATEGORY],
    }
    _put(service_request, "code", {"text": dataset.reason} if dataset.reason else None)
    service_request |= {
        "subject": {"reference": patient_url},
        "authoredOn": authored_on,
        "requester": requester,
        "performer": [owner],
        "supportingInfo": [{"reference": consent_url}],
    }
    lines = dataset.referral_form.note_lines() if dataset.referral_form else []
    _put(service_request, "note", [{"text": line} for line in lines])
    task: JSON = {
        "resourceType": "Task",
        "identifier": [{"system": HH_REFERRAL_ID, "value": referral_id}],
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": sr_url},
        "for": {"reference": patient_url},
        "authoredOn": authored_on,
        "requester": practice,
        "owner": owner,
    }
    entries = [
        (
            patient_url,
            _patient(dataset, referral_id),
            f"identifier={NHS_NUMBER}|{dataset.nhs_number}",
        ),
        (consent_url, consent, f"identifier={HH_CONSENT_ID}|{consent_id}"),
        (sr_url, service_request, f"identifier={HH_REFERRAL_ID}|{referral_id}"),
        (task_url, task, f"identifier={HH_REFERRAL_ID}|{referral_id}"),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": url,
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": resource["resourceType"],
                    "ifNoneExist": condition,
                },
            }
            for url, resource, condition in entries
        ],
    }


def referral_bundle(
    *,
    referral_id: str,
    dataset: MinimumDataset,
    consent: ConsentRecord,
    housing_ods: str | None,
    housing_name: str,
    authored: datetime,
) -> JSON:
    """The whole transaction for a referral and its consent record, as it is sent."""
    consent_json = build_consent(
        consent,
        patient_reference=patient_full_url(referral_id),
        housing_ods=housing_ods,
        housing_name=housing_name,
    )
    return build_referral_transaction(
        referral_id=referral_id,
        dataset=dataset,
        consent=consent_json,
        consent_id=consent.id,
        housing_ods=housing_ods,
        housing_name=housing_name,
        authored=authored,
    )
