"""The consent gate: nothing identifiable leaves the practice without an active consent.

It is called from the forwarding code path itself, so no user interface, retry
worker or script can bypass it.
"""

from __future__ import annotations

from sqlmodel import Session

from healthy_homes.errors import ConsentRequiredError
from healthy_homes.store.models import ConsentRecord


def require_active_consent(
    session: Session, consent_id: str | None, *, patient_id: str, practice: str, referral: str
) -> ConsentRecord:
    """Return the referral's consent if it is a permit still in force; otherwise refuse."""
    consent = session.get(ConsentRecord, consent_id) if consent_id else None
    if consent is None:
        raise ConsentRequiredError(
            "referral has no recorded consent; it cannot be sent",
            practice=practice,
            referral=referral,
        )
    if consent.patient_id != patient_id or consent.practice_ods != practice:
        raise ConsentRequiredError(
            "referral's consent belongs to another patient; it cannot be sent",
            practice=practice,
            referral=referral,
        )
    if consent.withdrawn_at is not None:
        raise ConsentRequiredError(
            "consent was withdrawn; the referral cannot be sent",
            practice=practice,
            referral=referral,
        )
    if not consent.is_active_permit:
        raise ConsentRequiredError(
            f"consent decision is '{consent.decision}', not 'given'; the referral cannot be sent",
            practice=practice,
            referral=referral,
        )
    return consent
