"""The consent wording read to the patient, versioned: each consent records its version.

A new wording gets a new version; old versions stay here so that what a patient
agreed to can always be shown again.
"""

from __future__ import annotations

CURRENT_VERSION = "2026-1"

WORDINGS = {
    "2026-1": (
        "With your agreement we will send your name, date of birth, NHS number, address "
        "and phone number to {service}, so that they can contact you about a free home "
        "visit to check for cold, damp and hazards. We will not send your medical records. "
        "You can change your mind at any time, and we will ask them to stop and delete "
        "your details."
    ),
}


def consent_wording(service: str, version: str = CURRENT_VERSION) -> str:
    """The wording of ``version`` for a named housing service."""
    try:
        template = WORDINGS[version]
    except KeyError:
        raise ValueError(f"unknown consent wording version {version!r}") from None
    return template.format(service=service)
