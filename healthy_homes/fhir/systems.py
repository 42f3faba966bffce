"""Identifier and code systems we use (UK Core and our own)."""

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANISATION = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY = "http://loinc.org"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"

# Our own identifier namespaces: stable ids that make retries idempotent.
HH_BASE = "https://healthy-homes.example.org/fhir"
HH_FLAG_ID = f"{HH_BASE}/Id/flag"
HH_REFERRAL_ID = f"{HH_BASE}/Id/referral"
HH_CONSENT_ID = f"{HH_BASE}/Id/consent"
HH_CODES = f"{HH_BASE}/CodeSystem/healthy-homes"
