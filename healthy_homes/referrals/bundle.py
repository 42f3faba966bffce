"""The referral as a FHIR transaction (SDOH Clinical Care pattern).

Patient, Consent, ServiceRequest (intent order, supportingInfo → Consent) and Task
(status requested, focus → ServiceRequest). Every entry is a conditional create on
our identifier, so a retry after a lost acknowledgement creates nothing new.
See https://hl7.org/fhir/us/sdoh-clinicalcare/ for the pattern.

The referral form's answers, when there are any, are ``ServiceRequest.note`` entries,
one per answer, each text starting with a fixed label ("Tenure: ", "Main concerns: ",
"Best contact: ", "Best times: ", "Risks to visiting staff (shared with consent): ").
Plain text keeps them readable by any receiving system without a Questionnaire.
"""

from __future__ import annotations

from datetime import datetime

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from healthy_homes.consent.fhir_consent import build_consent
from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import to_json
from healthy_homes.fhir.systems import (
    HH_CODES,
    HH_CONSENT_ID,
    HH_REFERRAL_ID,
    NHS_NUMBER,
    ODS_ORGANISATION,
)
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.store.models import ConsentRecord

SNOMED = "http://snomed.info/sct"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"


def _patient(ds: MinimumDataset) -> JSON:
    address: JSON = {"use": "home", "line": ds.address_lines}
    if ds.city:
        address["city"] = ds.city
    if ds.postcode:
        address["postalCode"] = ds.postcode
    patient: JSON = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER, "value": ds.nhs_number}],
        "name": [{"use": "official", "family": ds.family_name, "given": ds.given_name.split()}],
        "address": [address],
    }
    if ds.birth_date:
        patient["birthDate"] = ds.birth_date
    if ds.phone:
        patient["telecom"] = [{"system": "phone", "value": ds.phone}]
    return to_json(Patient.model_validate(patient))


def _notes(ds: MinimumDataset) -> JSON:
    lines = ds.referral_form.note_lines() if ds.referral_form else []
    return {"note": [{"text": line} for line in lines]} if lines else {}


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
    practice = {"identifier": {"system": ODS_ORGANISATION, "value": dataset.practice_ods}}
    owner: JSON = {"display": housing_name}
    if housing_ods:
        owner["identifier"] = {"system": ODS_ORGANISATION, "value": housing_ods}
    ident = {"system": HH_REFERRAL_ID, "value": referral_id}
    service_request = to_json(
        ServiceRequest.model_validate(
            {
                "resourceType": "ServiceRequest",
                "identifier": [ident],
                "status": "active",
                "intent": "order",
                "category": [
                    {
                        "coding": [
                            {
                                "system": HH_CODES,
                                "code": "housing-referral",
                                "display": "Housing referral",
                            }
                        ]
                    }
                ],
                "code": {"text": dataset.reason},
                "subject": {"reference": patient_url},
                "authoredOn": authored.isoformat(),
                "requester": {**practice, "display": dataset.referrer},
                "performer": [owner],
                "supportingInfo": [{"reference": consent_url}],
                **_notes(dataset),
            }
        )
    )
    task = to_json(
        Task.model_validate(
            {
                "resourceType": "Task",
                "identifier": [ident],
                "status": "requested",
                "intent": "order",
                "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
                "focus": {"reference": sr_url},
                "for": {"reference": patient_url},
                "authoredOn": authored.isoformat(),
                "requester": practice,
                "owner": owner,
            }
        )
    )
    entries = [
        (patient_url, _patient(dataset), f"identifier={NHS_NUMBER}|{dataset.nhs_number}"),
        (consent_url, consent, f"identifier={HH_CONSENT_ID}|{consent_id}"),
        (sr_url, service_request, f"identifier={HH_REFERRAL_ID}|{referral_id}"),
        (task_url, task, f"identifier={HH_REFERRAL_ID}|{referral_id}"),
    ]
    bundle = Bundle.model_validate(
        {
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
    )
    return to_json(bundle)


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
