"""Who made a referral, as a user account: what "Referrals you made" lists by.

The pop-up knows its signed-in user's account. A CDS Hooks one-click knows only the
EHR's user (the hook context's ``userId``, e.g. ``Practitioner/123``, kept as the card's
'shown' actor); it counts as one of our accounts only when exactly one enabled
clinician of the practice has that ``Practitioner/ID`` on file. Anything else (no such
account, several, a ``PractitionerRole``) leaves the referral unclaimed, listed to
nobody as theirs: a wrong owner would show a patient to the wrong clinician.
"""

from __future__ import annotations

from sqlmodel import col, select

from healthy_homes.store.access_models import UserAccount
from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral

#: ``Role.CLINICIAN``'s stored value (the enum lives with the pages, above this layer).
CLINICIAN = "clinician"


def account_for_ehr_user(db: Database, practice_ods: str, ehr_user: str) -> str | None:
    """The one enabled clinician account of the practice with this Practitioner, or None."""
    if not ehr_user.startswith("Practitioner/"):
        return None
    with db.session() as session:
        found = session.exec(
            select(UserAccount.id)
            .where(
                UserAccount.organisation == practice_ods,
                UserAccount.role == CLINICIAN,
                UserAccount.practitioner == ehr_user,
                col(UserAccount.disabled).is_(False),
            )
            .limit(2)
        ).all()
    return found[0] if len(found) == 1 else None


def claim(db: Database, referral_id: str, user_id: str) -> Referral | None:
    """Record who made the referral, unless it already has a maker (the first one stays)."""
    with db.session() as session:
        row = session.get(Referral, referral_id)
        if row is None:
            return None
        if row.referred_by_user is None:
            row.referred_by_user = user_id
            session.add(row)
        return row
