"""The scheduled closed loop: a housing officer's move comes back to the practice record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.connector.closed_loop import ClosedLoop, add_loop_job
from healthy_homes.demo.scenario import PRACTICE_ODS, Demo
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.store.models import Alert, Referral

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday


def test_status_moves_come_back_and_overdue_alerts_fire_once(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with Demo(tmp_path, patients=200, seed=3, clock=clock) as demo:
        result = asyncio.run(demo.run())
        assert demo.settings is not None and result.referral_id is not None
        with demo.db.session() as session:
            referral = session.get(Referral, result.referral_id)
            assert referral is not None and referral.remote_task_url
            task_id = referral.remote_task_url.split("/")[-1]

        async def one_pass() -> tuple[int, int]:
            async with FhirClient(demo.practice_url, practice=PRACTICE_ODS) as practice:
                loop = ClosedLoop(
                    demo.db,
                    demo.settings.housing_services,  # type: ignore[union-attr]
                    {PRACTICE_ODS: practice},
                    clock,
                )
                try:
                    report = await loop.run_once()
                finally:
                    await loop.aclose()
            return len(report.changes), len(report.alerts)

        # Nothing has happened at the housing service yet, and nothing is overdue.
        assert asyncio.run(one_pass()) == (0, 0)

        # The housing officer receives and accepts the referral.
        admin = demo.housing_server.url + f"/admin/tasks/{task_id}/status"
        for status in ("received", "accepted"):
            httpx.post(admin, json={"status": status}).raise_for_status()
        changes, _ = asyncio.run(one_pass())
        assert changes == 1
        with demo.db.session() as session:
            assert session.get(Referral, result.referral_id).task_status == "accepted"  # type: ignore[union-attr]

        # The referring clinician sees it in the practice record: a Task mirror.
        mirror = httpx.get(
            f"{demo.practice_url}/Task",
            params={"identifier": f"{HH_REFERRAL_ID}|{result.referral_id}"},
        ).json()
        assert [e["resource"]["status"] for e in mirror["entry"]] == ["accepted"]

        # Accepted counts as acknowledged: weeks later no alert is raised.
        clock.advance(timedelta(days=30))
        assert asyncio.run(one_pass()) == (0, 0)
        with demo.db.session() as session:
            assert session.exec(select(Alert)).all() == []


def test_loop_job_is_scheduled_once_with_the_shortest_poll(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with Demo(tmp_path, patients=50, seed=1, clock=clock) as demo:
        loop = ClosedLoop(demo.db, demo.settings.housing_services, {}, clock)  # type: ignore[union-attr]
        scheduler = AsyncIOScheduler(timezone="Europe/London")
        add_loop_job(scheduler, loop)
        [job] = scheduler.get_jobs()
        assert job.id == "referrals:loop" and job.max_instances == 1
        assert job.trigger.interval == timedelta(minutes=loop.poll_minutes)
        asyncio.run(loop.aclose())
