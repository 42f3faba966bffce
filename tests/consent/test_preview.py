"""The preview is exactly what the housing service then receives (ids apart)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from healthy_homes.store.models import ConsentRecord, Referral
from tests.consent.conftest import everything, flag_for
from tests.consent.test_decisions import FORM
from tests.flags.world import CLINICIAN, NHS

URN_TYPES = {"p": "Patient", "c": "Consent", "s": "ServiceRequest", "t": "Task"}


def _shape(value: Any) -> Any:
    """Drop server ids and versions; references keep only the type they point at."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("id", "meta"):
                continue
            if key == "reference" and isinstance(item, str):
                out[key] = (
                    URN_TYPES[item.rsplit("-", 1)[-1]]
                    if item.startswith("urn:uuid:")
                    else item.split("/")[0]
                )
            elif key == "identifier" and isinstance(item, list):
                out[key] = [
                    {**i, "value": "<ours>"} if "healthy-homes" in i["system"] else i for i in item
                ]
            else:
                out[key] = _shape(item)
        return out
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


async def test_preview_matches_what_arrives(desk, housing):
    flag = await flag_for(desk)
    preview = await desk.preview(flag.id, recorded_by=CLINICIAN, form=FORM)
    with desk.db.session() as session:  # nothing stored, nothing sent
        assert session.exec(select(ConsentRecord)).all() == []
        assert session.exec(select(Referral)).all() == []
    assert everything(housing.base_url, "ServiceRequest") == []

    sent = await desk.consent(flag.id, recorded_by=CLINICIAN, form=FORM)
    assert sent.sent
    previewed = {
        e["resource"]["resourceType"]: _shape(e["resource"]) for e in preview.bundle["entry"]
    }
    for resource_type in ("Patient", "Consent", "ServiceRequest", "Task"):
        [arrived] = everything(housing.base_url, resource_type)
        assert _shape(arrived) == previewed[resource_type], resource_type


async def test_preview_reads_out_plainly(desk):
    flag = await flag_for(desk)
    preview = await desk.preview(flag.id, recorded_by=CLINICIAN, form=FORM)
    lines = dict(preview.lines)
    assert lines["NHS number"] == NHS[0]
    assert lines["Address"] == "0 Front Street, Tynemouth, NE30 4AA"
    assert lines["Sent to"] == "Safe and Healthy Homes"
    assert lines["Tenure"] == "private rented"
    assert lines["Risks to visiting staff (shared with consent)"] == "large dog"
    assert "copd" not in repr(preview.bundle).lower()  # diagnoses never leave
