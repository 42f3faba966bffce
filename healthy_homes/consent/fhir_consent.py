"""The FHIR Consent written to the practice record (and sent with a referral).

Plain JSON: it travels in every referral transaction, the delivery hot path;
``tests/referrals/test_bundle.py`` proves it validates as an R4B Consent.
"""

from __future__ import annotations

from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import fhir_datetime
from healthy_homes.fhir.systems import (
    ACT_REASON,
    CONSENT_SCOPE,
    HH_CONSENT_ID,
    ODS_ORGANISATION,
)
from healthy_homes.store.models import ConsentDecision, ConsentRecord

LOINC = "http://loinc.org"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def build_consent(
    record: ConsentRecord,
    *,
    patient_reference: str,
    housing_ods: str | None,
    housing_name: str,
) -> JSON:
    """A patient-privacy Consent: permit (or deny) sharing with the housing service."""
    permit = record.decision == ConsentDecision.GIVEN
    status = "inactive" if record.withdrawn_at else "active"
    actor_ref: JSON = {"display": housing_name}
    if housing_ods:
        actor_ref["identifier"] = {"system": ODS_ORGANISATION, "value": housing_ods}
    return {
        "resourceType": "Consent",
        "identifier": [{"system": HH_CONSENT_ID, "value": record.id}],
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": {"reference": patient_reference},
        "dateTime": fhir_datetime(record.recorded_at),
        "performer": [{"reference": patient_reference}],
        "organization": [
            {"identifier": {"system": ODS_ORGANISATION, "value": record.practice_ods}}
        ],
        "sourceAttachment": {
            "title": f"Healthy Homes consent wording {record.wording_version}; "
            f"{record.method} consent recorded by {record.recorded_by}",
        },
        "policyRule": {
            "text": "Direct care: referral to a housing service with the "
            "patient's explicit consent (UK GDPR Art. 6(1)(e), 9(2)(h))"
        },
        "provision": {
            "type": "permit" if permit else "deny",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": PARTICIPATION,
                                "code": "IRCP",
                                "display": "information recipient",
                            }
                        ]
                    },
                    "reference": actor_ref,
                }
            ],
            "purpose": [{"system": ACT_REASON, "code": "TREAT", "display": "treatment"}],
        },
    }


def consent_search_key(consent_id: str) -> str:
    """The ``If-None-Exist`` query that finds our Consent again."""
    return f"identifier={HH_CONSENT_ID}|{consent_id}"
