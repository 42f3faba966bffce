"""Raising flags against a real practice server: restraint, priority, idempotent FHIR Flags."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FlagRulesConfig
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import HH_FLAG_ID
from healthy_homes.flags.capacity import FixedCapacity, HousingCapacity
from healthy_homes.flags.lifecycle import raise_flags, write_fhir_flag
from healthy_homes.flags.transitions import conclude, flags_for_patient
from healthy_homes.store.models import FlagEvent, FlagRecord, FlagStatus
from tests.flags.world import CLINICIAN, NOW, PRACTICE, on_register, registers


def fhir_flags(base_url: str) -> list[dict]:
    bundle = httpx.get(f"{base_url}/Flag", params={"_count": "100"}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


async def test_flags_carry_reasons_version_priority_and_our_identifier(db, practice) -> None:
    on_register(db, "p0", "copd")
    on_register(db, "p1", "copd")
    on_register(db, "p1", "high_risk")
    on_register(db, "p4", "copd")  # deceased: never flagged
    rules = FlagRulesConfig(rule_set_version="2026.2-test")
    async with FhirClient(practice.base_url) as client:
        report = await raise_flags(db, client, PRACTICE, registers(), rules, FixedClock(NOW))
    assert report.raised == ["p1", "p0"]  # frailty and two registers first
    assert report.skipped == {"deceased": 1}
    [flag] = flags_for_patient(db, PRACTICE, "p1")
    assert flag.rule_set_version == "2026.2-test" and flag.priority == 3
    assert flag.reasons[-1] == "not offered in the last 12 months"
    with db.session() as session:
        events = session.exec(select(FlagEvent).where(FlagEvent.flag_id == flag.id)).all()
    assert [(e.kind, e.actor) for e in events] == [("raised", "rule set 2026.2-test")]
    written = fhir_flags(practice.base_url)
    assert len(written) == 2
    assert {f["identifier"][0]["system"] for f in written} == {HH_FLAG_ID}
    assert all(f["status"] == "active" for f in written)


async def test_daily_cap_takes_the_highest_priority_first(db, practice) -> None:
    for pid in ("p0", "p1", "p2"):
        on_register(db, pid, "copd")
    on_register(db, "p2", "asthma")
    clock = FixedClock(NOW)
    rules = FlagRulesConfig(max_new_flags_per_day=1)
    async with FhirClient(practice.base_url) as client:
        first = await raise_flags(db, client, PRACTICE, registers(), rules, clock)
        again = await raise_flags(db, client, PRACTICE, registers(), rules, clock)
        clock.advance(timedelta(days=1))
        tomorrow = await raise_flags(db, client, PRACTICE, registers(), rules, clock)
    assert first.raised == ["p2"] and first.capped
    assert first.skipped["daily cap reached"] == 2
    assert again.raised == [] and again.skipped["already flagged"] == 1
    assert tomorrow.raised == ["p0"]


async def test_housing_at_capacity_throttles_new_flags(db, practice) -> None:
    for pid in ("p0", "p1", "p2"):
        on_register(db, pid, "copd")
    clock = FixedClock(NOW)
    async with FhirClient(practice.base_url) as client:
        full = await raise_flags(
            db,
            client,
            PRACTICE,
            registers(),
            FlagRulesConfig(),
            clock,
            capacity=HousingCapacity(accepting=False),
        )
        two = await raise_flags(
            db,
            client,
            PRACTICE,
            registers(),
            FlagRulesConfig(),
            clock,
            capacity=FixedCapacity(HousingCapacity(free_places=2)),
        )
    assert full.raised == [] and full.throttled
    assert full.skipped["housing service at capacity"] == 3
    assert len(two.raised) == 2 and two.throttled


async def test_no_new_flag_inside_the_decline_window(db, practice) -> None:
    on_register(db, "p0", "copd")
    clock = FixedClock(NOW)
    async with FhirClient(practice.base_url) as client:
        await raise_flags(db, client, PRACTICE, registers(), FlagRulesConfig(), clock)
        [flag] = flags_for_patient(db, PRACTICE, "p0")
        await conclude(
            db,
            client,
            flag.id,
            FlagStatus.DECLINED,
            by=CLINICIAN,
            clock=clock,
            reason="happy with the home as it is",
        )
        clock.advance(timedelta(days=364))
        inside = await raise_flags(db, client, PRACTICE, registers(), FlagRulesConfig(), clock)
        clock.advance(timedelta(days=1))
        after = await raise_flags(db, client, PRACTICE, registers(), FlagRulesConfig(), clock)
    assert inside.raised == [] and inside.skipped == {"declined recently": 1}
    assert after.raised == ["p0"]
    newest = flags_for_patient(db, PRACTICE, "p0")[0]
    assert newest.reasons[-1] == "not offered in the last 12 months"
    written = {f["identifier"][0]["value"]: f["status"] for f in fhir_flags(practice.base_url)}
    assert written == {flag.id: "inactive", newest.id: "active"}


async def test_writing_a_flag_twice_or_after_a_restart_creates_one_fhir_flag(db, practice) -> None:
    on_register(db, "p0", "copd")
    clock = FixedClock(NOW)
    async with FhirClient(practice.base_url) as client:
        await raise_flags(db, client, PRACTICE, registers(), FlagRulesConfig(), clock)
        [flag] = flags_for_patient(db, PRACTICE, "p0")
        # A restart that lost the server id: the conditional create finds the first Flag.
        with db.session() as session:
            row = session.get(FlagRecord, flag.id)
            row.fhir_flag_id, row.fhir_status = None, None  # type: ignore[union-attr]
            session.add(row)
        await write_fhir_flag(db, client, flag)
        await raise_flags(db, client, PRACTICE, registers(), FlagRulesConfig(), clock)
    assert len(fhir_flags(practice.base_url)) == 1
    assert flags_for_patient(db, PRACTICE, "p0")[0].fhir_flag_id is not None
