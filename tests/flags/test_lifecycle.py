"""The flag lifecycle: shown, outcomes, snooze, retirement, events, version-aware FHIR updates."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FlagRulesConfig
from healthy_homes.errors import FlagStateError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.lifecycle import raise_flags
from healthy_homes.flags.transitions import (
    conclude,
    flags_for_patient,
    mark_shown,
    record_outcome,
    sync_pending_flags,
)
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagEvent, FlagRecord, FlagStatus
from tests.flags.world import CLINICIAN, NOW, PRACTICE, on_register, registers


async def _flag(db: Database, base_url: str, clock: FixedClock) -> FlagRecord:
    on_register(db, "p0", "copd")
    async with FhirClient(base_url) as client:
        await raise_flags(db, client, PRACTICE, registers(), FlagRulesConfig(), clock)
    [flag] = flags_for_patient(db, PRACTICE, "p0")
    return flag


def _events(db: Database, flag_id: str) -> list[tuple[str, str | None, str | None]]:
    with db.session() as session:
        rows = session.exec(
            select(FlagEvent).where(FlagEvent.flag_id == flag_id).order_by(FlagEvent.at)
        ).all()
    return [(e.kind, e.actor, e.reason) for e in rows]


def _fhir_flag(base_url: str, fhir_id: str) -> dict:
    return httpx.get(f"{base_url}/Flag/{fhir_id}").json()


async def test_shown_then_dismissed_then_retired_each_recorded(db, practice) -> None:
    clock = FixedClock(NOW)
    flag = await _flag(db, practice.base_url, clock)
    clock.advance(timedelta(minutes=5))
    shown = mark_shown(db, flag.id, by=CLINICIAN, clock=clock, event_id="card-1")
    mark_shown(db, flag.id, by=CLINICIAN, clock=clock, event_id="card-1")  # same card again
    assert shown.status == FlagStatus.SHOWN and shown.shown_at == clock.now()
    clock.advance(timedelta(minutes=1))
    async with FhirClient(practice.base_url) as client:
        done = await conclude(
            db, client, flag.id, FlagStatus.DISMISSED, by=CLINICIAN, clock=clock, reason="busy"
        )
        again = await conclude(
            db, client, flag.id, FlagStatus.DISMISSED, by=CLINICIAN, clock=clock, reason="busy"
        )
    assert done.status == again.status == FlagStatus.RETIRED
    assert done.outcome == "dismissed" and done.outcome_at == clock.now()
    assert _events(db, flag.id) == [
        ("raised", "rule set 2026.1", None),
        ("shown", CLINICIAN, None),
        ("dismissed", CLINICIAN, "busy"),
        ("retired", None, "outcome dismissed"),
    ]
    resource = _fhir_flag(practice.base_url, flag.fhir_flag_id)  # type: ignore[arg-type]
    assert resource["status"] == "inactive"
    assert resource["period"]["end"].startswith("2026-11-24T09:06")
    assert resource["meta"]["versionId"] == "2"  # the repeat wrote nothing


async def test_snooze_keeps_the_flag_and_its_fhir_flag_open(db, practice) -> None:
    clock = FixedClock(NOW)
    flag = await _flag(db, practice.base_url, clock)
    async with FhirClient(practice.base_url) as client:
        snoozed = await conclude(
            db,
            client,
            flag.id,
            FlagStatus.SNOOZED,
            by=CLINICIAN,
            clock=clock,
            snooze_for=timedelta(days=1),
        )
    assert snoozed.status == FlagStatus.SNOOZED
    assert snoozed.snoozed_until == NOW + timedelta(days=1)
    assert _fhir_flag(practice.base_url, flag.fhir_flag_id)["status"] == "active"  # type: ignore[arg-type]
    shown = mark_shown(db, flag.id, by=CLINICIAN, clock=clock)
    assert shown.status == FlagStatus.SHOWN and shown.snoozed_until is None


async def test_one_outcome_only_except_a_change_of_mind_to_yes(db, practice) -> None:
    clock = FixedClock(NOW)
    flag = await _flag(db, practice.base_url, clock)
    async with FhirClient(practice.base_url) as client:
        await conclude(db, client, flag.id, FlagStatus.DECLINED, by=CLINICIAN, clock=clock)
    with pytest.raises(FlagStateError, match="already has the outcome 'declined'"):
        record_outcome(db, flag.id, FlagStatus.DISMISSED, by=CLINICIAN, clock=clock)
    with pytest.raises(FlagStateError, match="cannot be snoozed"):
        record_outcome(db, flag.id, FlagStatus.SNOOZED, by=CLINICIAN, clock=clock)
    changed = record_outcome(db, flag.id, FlagStatus.ACCEPTED, by=CLINICIAN, clock=clock)
    assert changed.outcome == "accepted"
    with pytest.raises(FlagStateError, match="not an outcome"):
        record_outcome(db, flag.id, FlagStatus.RAISED, by=CLINICIAN, clock=clock)


class EhrEditsFirst(httpx.AsyncBaseTransport):
    """Real HTTP, but the EHR writes the Flag just before our first PUT reaches it."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.inner = httpx.AsyncHTTPTransport()
        self.store = store
        self.raced = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/Flag/" in request.url.path and not self.raced:
            self.raced = True
            flag_id = request.url.path.rsplit("/", 1)[-1]
            current = self.store.read("Flag", flag_id).resource()
            self.store.update({**current, "encounter": {"reference": "Encounter/e1"}})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_update_after_a_concurrent_edit_rereads_and_keeps_the_edit(db, practice) -> None:
    clock = FixedClock(NOW)
    flag = await _flag(db, practice.base_url, clock)
    transport = EhrEditsFirst(practice.store)
    async with FhirClient(practice.base_url, transport=transport) as client:
        await conclude(db, client, flag.id, FlagStatus.NOT_APPROPRIATE, by=CLINICIAN, clock=clock)
    assert transport.raced
    resource = _fhir_flag(practice.base_url, flag.fhir_flag_id)  # type: ignore[arg-type]
    assert resource["status"] == "inactive"
    assert resource["encounter"] == {"reference": "Encounter/e1"}  # not overwritten blindly
    assert resource["meta"]["versionId"] == "3"


async def test_an_outcome_recorded_while_the_practice_was_down_is_finished_later(
    db, practice
) -> None:
    clock = FixedClock(NOW)
    flag = await _flag(db, practice.base_url, clock)
    record_outcome(db, flag.id, FlagStatus.DISMISSED, by=CLINICIAN, clock=clock)
    async with FhirClient(practice.base_url) as client:
        assert await sync_pending_flags(db, client, PRACTICE, clock) == 1
        assert await sync_pending_flags(db, client, PRACTICE, clock) == 0
    [row] = flags_for_patient(db, PRACTICE, "p0")
    assert row.status == FlagStatus.RETIRED and row.fhir_status == "inactive"
    assert _fhir_flag(practice.base_url, flag.fhir_flag_id)["status"] == "inactive"  # type: ignore[arg-type]
