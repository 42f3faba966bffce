"""What the dialog's forms send, and the choices they offer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from healthy_homes.referrals.dataset import (
    CONCERN_TEXT,
    CONTACT_TEXT,
    TENURE_TEXT,
    ReferralForm,
)

#: Why a patient declined: a short list is quicker to record and easier to count.
DECLINE_REASONS: dict[str, str] = {
    "no-visit": "Does not want a home visit",
    "has-help": "Already getting help with their home",
    "not-now": "Not the right time",
    "other": "Another reason",
}

#: How the patient gave consent; verbal is the usual case in a consultation.
CONSENT_METHODS: dict[str, str] = {
    "verbal": "Verbal",
    "written": "Written",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreviewIn(_Body):
    """Preview: the referral form as filled in so far."""

    form: ReferralForm | None = None


class ConsentIn(_Body):
    """Consent given, with the wording version the clinician was shown."""

    wording_version: str = Field(min_length=1, max_length=40)
    method: Literal["verbal", "written"] = "verbal"
    form: ReferralForm | None = None


class DeclineIn(_Body):
    """Declined, with a reason from the list and optional words of the clinician's own."""

    reason: Literal["no-visit", "has-help", "not-now", "other"]
    detail: str | None = Field(default=None, max_length=400)

    def text(self) -> str:
        """The reason as recorded."""
        detail = " ".join((self.detail or "").split())
        label = DECLINE_REASONS[self.reason]
        return f"{label}: {detail}" if detail else label


class NotAppropriateIn(_Body):
    """Not appropriate for this patient, with optional words of the clinician's own."""

    reason: str | None = Field(default=None, max_length=400)

    def text(self) -> str | None:
        """The reason as recorded (None when none was given)."""
        return " ".join((self.reason or "").split()) or None


def _items(choices: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"value": value, "text": text[:1].upper() + text[1:]} for value, text in choices.items()
    ]


def form_items() -> dict[str, list[dict[str, str]]]:
    """The radio and checkbox items of the dialog's forms (value and label)."""
    return {
        "tenure": _items({k.value: v for k, v in TENURE_TEXT.items()}),
        "concerns": _items({k.value: v for k, v in CONCERN_TEXT.items()}),
        "contact": _items({k.value: v for k, v in CONTACT_TEXT.items()}),
        "decline": _items(DECLINE_REASONS),
        "consentMethod": _items(CONSENT_METHODS),
    }
