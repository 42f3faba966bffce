"""Finding referrals by NHS number without storing or querying the number in plaintext.

The dataset columns are encrypted, so SQL cannot look inside them. Each write of a
``Referral`` or ``HousingReferral`` stamps ``nhs_number_hash`` with the keyed hash of
the dataset's NHS number (HMAC-SHA256 under the keyring's HMAC key); a lookup hashes
the number it is given and compares hashes. An erased dataset erases its hash too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlmodel import Session, select

from healthy_homes.crypto import NHS_NUMBER_PURPOSE, keyed_hash
from healthy_homes.store.models import HousingReferral, Referral


def nhs_number_hash(nhs_number: str) -> str:
    """The lookup hash of an NHS number, written with or without spaces."""
    return keyed_hash(NHS_NUMBER_PURPOSE, "".join(nhs_number.split()))


def dataset_nhs_number_hash(dataset: dict[str, Any] | None) -> str | None:
    """The lookup hash of a stored dataset's NHS number (None when it has none)."""
    nhs = (dataset or {}).get("nhs_number")
    return nhs_number_hash(nhs) if isinstance(nhs, str) and nhs.strip() else None


def _stamp(_mapper: Any, _connection: Any, target: Referral | HousingReferral) -> None:
    target.nhs_number_hash = dataset_nhs_number_hash(target.dataset)


for _model in (Referral, HousingReferral):
    event.listen(_model, "before_insert", _stamp)
    event.listen(_model, "before_update", _stamp)


def referrals_by_nhs_number(session: Session, nhs_number: str) -> Sequence[Referral]:
    """The practice-side referrals of the patient with this NHS number."""
    wanted = nhs_number_hash(nhs_number)
    return session.exec(select(Referral).where(Referral.nhs_number_hash == wanted)).all()


def housing_referrals_by_nhs_number(
    session: Session, nhs_number: str, *, team_id: str | None = None
) -> Sequence[HousingReferral]:
    """Referrals received by the housing inbox (one team's, if given) for this NHS number."""
    query = select(HousingReferral).where(
        HousingReferral.nhs_number_hash == nhs_number_hash(nhs_number)
    )
    if team_id is not None:
        query = query.where(HousingReferral.team_id == team_id)
    return session.exec(query).all()
