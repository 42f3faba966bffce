"""The capacity setting feeds the flags' throttle over HTTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FlagRulesConfig
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.capacity import resolve_capacity
from healthy_homes.flags.lifecycle import raise_flags
from healthy_homes.housing.capacity_client import InboxCapacity
from healthy_homes.housing.teams import set_capacity
from tests.flags.world import NOW, PRACTICE, fresh_db, on_register, practice_server, registers
from tests.housing.world import Inbox, dataset, referral


def _capacity(inbox: Inbox, team: str = "north") -> dict[str, object]:
    response = httpx.get(
        f"{inbox.url}/teams/{team}/capacity",
        headers={"Authorization": f"Bearer {inbox.tokens[team]}"},
    )
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def test_capacity_counts_this_week_s_referrals_against_the_setting(inbox: Inbox) -> None:
    assert _capacity(inbox)["capacityPerWeek"] is None
    assert _capacity(inbox)["accepting"] is True
    with inbox.db.session() as session:
        set_capacity(session, "north", 2)
    inbox.send("north", referral("cap-1", dataset(21)))
    body = _capacity(inbox)
    assert body["receivedThisWeek"] == 1 and body["freePlaces"] == 1 and body["accepting"]
    inbox.send("north", referral("cap-2", dataset(22)))
    inbox.send("north", referral("cap-2", dataset(22)))  # a retry counts once
    body = _capacity(inbox)
    assert body["receivedThisWeek"] == 2 and body["freePlaces"] == 0
    assert body["accepting"] is False
    assert _capacity(inbox, "south")["receivedThisWeek"] == 0

    inbox.clock.advance(timedelta(days=7))  # a new week
    assert _capacity(inbox)["freePlaces"] == 2


def test_capacity_needs_the_team_s_token(inbox: Inbox) -> None:
    wrong = httpx.get(
        f"{inbox.url}/teams/north/capacity",
        headers={"Authorization": f"Bearer {inbox.tokens['south']}"},
    )
    assert wrong.status_code == 401


async def test_the_flags_capacity_provider_reads_the_inbox(inbox: Inbox) -> None:
    provider = InboxCapacity(inbox.url, "north", inbox.tokens["north"])
    unlimited = await resolve_capacity(provider, "C84001")
    assert unlimited.allow(5) == 5

    with inbox.db.session() as session:
        set_capacity(session, "north", 3)
    inbox.send("north", referral("cap-3", dataset(23)))
    room = await resolve_capacity(provider, "C84001")
    assert room.free_places == 2 and room.allow(5) == 2

    with inbox.db.session() as session:
        set_capacity(session, "north", 0)
    full = await resolve_capacity(provider, "C84001")
    assert not full.accepting and full.allow(5) == 0

    # The inbox going away leaves the last answer in force, not "no limit".
    inbox.server.stop()
    assert (await resolve_capacity(provider, "C84001")).allow(5) == 0


async def test_a_full_housing_team_throttles_the_practice_s_new_flags(
    inbox: Inbox, tmp_path: Path, mock_fhir_factory: Any
) -> None:
    (tmp_path / "connector").mkdir()
    db = fresh_db(tmp_path / "connector")
    practice = practice_server(mock_fhir_factory)
    for pid in ("p0", "p1", "p2"):
        on_register(db, pid, "copd")
    with inbox.db.session() as session:
        set_capacity(session, "north", 1)
    inbox.send("north", referral("cap-4", dataset(24)))  # this week's one place is taken
    provider = InboxCapacity(inbox.url, "north", inbox.tokens["north"])
    try:
        async with FhirClient(practice.base_url) as client:
            report = await raise_flags(
                db,
                client,
                PRACTICE,
                registers(),
                FlagRulesConfig(),
                FixedClock(NOW),
                capacity=provider,
            )
            assert report.raised == [] and report.throttled
            assert report.skipped["housing service at capacity"] == 3

            with inbox.db.session() as session:
                set_capacity(session, "north", 3)  # two places free now
            more = await raise_flags(
                db,
                client,
                PRACTICE,
                registers(),
                FlagRulesConfig(),
                FixedClock(NOW),
                capacity=provider,
            )
        assert len(more.raised) == 2 and more.throttled
    finally:
        db.dispose()
