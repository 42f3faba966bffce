"""Before consent: show the patient exactly what the housing service would receive.

Built by the same code that builds the real referral (the minimum dataset in
``referrals/dataset.py``, the transaction in ``referrals/bundle.py``); only the ids and
the timestamps of the real one will differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.consent.service import CONSENT_WORDING_VERSION
from healthy_homes.errors import ReferralError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.flags.transitions import get_flag
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.dataset import MinimumDataset, ReferralForm, from_patient
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, ConsentRecord

PREVIEW_ID = "preview"


@dataclass(frozen=True)
class ReferralPreview:
    """What would be sent: the FHIR transaction, and the same as labelled lines to read out."""

    bundle: JSON
    dataset: MinimumDataset
    lines: list[tuple[str, str]]
    service: HousingServiceConfig


def readable_lines(ds: MinimumDataset, housing_name: str) -> list[tuple[str, str]]:
    """The dataset as (label, value) pairs, in the order a patient would check them."""
    address = ", ".join([*ds.address_lines, *(x for x in (ds.city, ds.postcode) if x)])
    lines = [
        ("Sent to", housing_name),
        ("Name", f"{ds.given_name} {ds.family_name}".strip()),
        ("Date of birth", ds.birth_date or "not recorded"),
        ("NHS number", ds.nhs_number),
        ("Address", address or "not recorded"),
        ("Phone", ds.phone or "not recorded"),
        ("Reason", ds.reason),
        ("Referred by", f"{ds.referrer}, practice {ds.practice_ods}"),
    ]
    for note in ds.referral_form.note_lines() if ds.referral_form else []:
        label, _, value = note.partition(": ")
        lines.append((label, value))
    return lines


async def preview_referral(
    db: Database,
    practice_client: FhirClient,
    *,
    flag_id: str,
    service: HousingServiceConfig,
    recorded_by: str,
    clock: Clock,
    form: ReferralForm | None = None,
    method: str = "verbal",
    wording_version: str = CONSENT_WORDING_VERSION,
    patient: JSON | None = None,
) -> ReferralPreview:
    """The referral this flag's patient would send to ``service``, built but not stored or sent.

    ``patient`` is the flag's Patient when the caller has just read it (to route).
    """
    with db.session() as session:
        flag = get_flag(session, flag_id)
    if patient is None:
        patient = await practice_client.read("Patient", flag.patient_id)
    try:
        dataset = from_patient(
            patient, practice_ods=flag.practice_ods, referrer=recorded_by, form=form
        )
    except ValueError as exc:
        raise ReferralError(str(exc), practice=flag.practice_ods) from exc
    now = clock.now()
    consent = ConsentRecord(
        id=PREVIEW_ID,
        practice_ods=flag.practice_ods,
        patient_id=flag.patient_id,
        flag_id=flag.id,
        decision=ConsentDecision.GIVEN,
        method=method,
        recorded_by=recorded_by,
        wording_version=wording_version,
        recorded_at=now,
    )
    bundle = referral_bundle(
        referral_id=PREVIEW_ID,
        dataset=dataset,
        consent=consent,
        housing_ods=service.ods_code,
        housing_name=service.name,
        authored=now,
    )
    return ReferralPreview(bundle, dataset, readable_lines(dataset, service.name), service)
