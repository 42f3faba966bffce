"""A one-click referral from a CDS Hooks card is filed under the EHR user's own account.

The card's EHR user (``Practitioner/dr-demo``, the hook context's ``userId``) counts as
one of our accounts only when exactly one enabled clinician of the practice has that
Practitioner on file; otherwise the referral is nobody's ("Referrals you made" lists it
to no clinician), never a guess.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from healthy_homes.accounts.users import add_user, set_disabled
from healthy_homes.store.db import Database
from healthy_homes.store.models import Referral
from healthy_homes.web.access import Role
from tests.cds_hooks.test_feedback import USER, accepted, card_for, send
from tests.flags.world import NOW, PRACTICE

PASSWORD = "correct horse battery staple"


def _account(
    db: Database,
    username: str,
    *,
    practitioner: str | None = USER,
    role: Role = Role.CLINICIAN,
    organisation: str = PRACTICE,
) -> str:
    with db.session() as session:
        user = add_user(
            session,
            username=username,
            display_name="Dr Demo",
            role=role,
            organisation=organisation,
            password=PASSWORD,
            now=NOW,
            practitioner=practitioner,
        )
        session.flush()
        return user.id


async def _one_click_referrer(cds, db: Database) -> str | None:  # type: ignore[no-untyped-def]
    card = await card_for(cds, "p1", 1)
    assert await send(cds, accepted(card, 0)) == 200
    with db.session() as session:
        [referral] = session.exec(select(Referral)).all()
    return referral.referred_by_user


async def test_the_ehr_users_one_clinician_account_made_the_referral(cds, flagged) -> None:
    mine = _account(flagged, "dr.demo")
    # The same Practitioner elsewhere, or in another role, is not this clinician here.
    _account(flagged, "dr.demo.admin", role=Role.PRACTICE_ADMIN)
    _account(flagged, "dr.demo.b99999", organisation="B99999")
    _account(flagged, "dr.namesake", practitioner="Practitioner/someone-else")
    assert await _one_click_referrer(cds, flagged) == mine


async def test_a_disabled_account_is_passed_over(cds, flagged) -> None:
    _account(flagged, "dr.demo.old")
    with flagged.session() as session:
        set_disabled(session, "dr.demo.old")
    current = _account(flagged, "dr.demo")
    assert await _one_click_referrer(cds, flagged) == current


@pytest.mark.parametrize("accounts", [0, 2], ids=["no-account", "two-accounts"])
async def test_no_single_account_leaves_the_referral_nobodys(cds, flagged, accounts) -> None:
    for n in range(accounts):
        _account(flagged, f"dr.demo{n}")
    assert await _one_click_referrer(cds, flagged) is None
