"""The closed loop: status back to the practice record, overdue acknowledgement alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import BarsHousingService, FhirHousingService, HousingServiceConfig
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.bars import BarsReceiver, bars_of
from healthy_homes.mock_server.pytest_plugin import MockFhirFactory
from healthy_homes.referrals.loop import (
    TaskMirror,
    add_working_days,
    check_overdue,
    poll_statuses,
    record_bars_response,
    record_status,
)
from healthy_homes.referrals.transports.base import transport_for
from healthy_homes.store.db import Database
from healthy_homes.store.models import Alert, Referral, ReferralStatus
from tests.transports.envelopes import consent, dataset, envelope

THURSDAY = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # Europe/London is UTC in November


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'loop.db'}")
    database.upgrade()
    return database


def _service(url: str = "https://h.example/fhir", **extra: object) -> FhirHousingService:
    return FhirHousingService.model_validate(
        {"id": "h", "name": "Housing", "fhir_base_url": url, "ack_working_days": 2, **extra}
    )


def _sent_referral(db: Database, *, sent_at: datetime = THURSDAY) -> str:
    record = consent()
    referral = Referral(
        id=envelope(_service()).referral_id,
        practice_ods="A12345",
        patient_id="p1",
        consent_id=record.id,
        housing_service_id="h",
        dataset=dataset().model_dump(mode="json"),
        status=ReferralStatus.SENT,
        task_status="requested",
        created_at=sent_at,
        sent_at=sent_at,
    )
    with db.session() as session:
        session.add(record)
        session.flush()
        session.add(referral)
    return referral.id


def _alerts(db: Database) -> list[Alert]:
    with db.session() as session:
        return list(session.exec(select(Alert)).all())


def test_working_days_skip_weekends_and_bank_holidays() -> None:
    assert add_working_days(date(2026, 11, 26), 2) == date(2026, 11, 30)  # Thu -> Mon
    assert add_working_days(date(2026, 11, 28), 1) == date(2026, 11, 30)  # Sat -> Mon
    christmas = [date(2026, 12, 25), date(2026, 12, 28)]
    assert add_working_days(date(2026, 12, 24), 1, christmas) == date(2026, 12, 29)


async def _fired_at(db: Database, service: HousingServiceConfig, when: datetime) -> int:
    return len(await check_overdue(db, [service], clock=FixedClock(when)))


async def test_overdue_alert_fires_exactly_once_after_n_working_days_over_a_weekend(
    db: Database,
) -> None:
    _sent_referral(db)
    service = _service()
    quiet = [
        THURSDAY + timedelta(hours=7),
        datetime(2026, 11, 27, 16, tzinfo=UTC),  # Friday: working day 1
        datetime(2026, 11, 28, 12, tzinfo=UTC),  # Saturday
        datetime(2026, 11, 29, 12, tzinfo=UTC),  # Sunday
        datetime(2026, 11, 30, 23, 59, tzinfo=UTC),  # Monday: working day 2, still in time
    ]
    for when in quiet:
        assert await _fired_at(db, service, when) == 0, when
    assert await _fired_at(db, service, datetime(2026, 12, 1, 0, 1, tzinfo=UTC)) == 1
    assert await _fired_at(db, service, datetime(2026, 12, 1, 9, tzinfo=UTC)) == 0
    assert await _fired_at(db, service, datetime(2026, 12, 2, 9, tzinfo=UTC)) == 0
    [alert] = _alerts(db)
    assert alert.kind == "ack-overdue" and "due 2026-11-30" in alert.message
    assert "9990000018" not in alert.message


async def test_bank_holiday_moves_the_deadline(db: Database) -> None:
    _sent_referral(db)
    service = _service(bank_holidays=["2026-11-30"])
    assert await _fired_at(db, service, datetime(2026, 12, 1, 12, tzinfo=UTC)) == 0
    assert await _fired_at(db, service, datetime(2026, 12, 2, 0, 1, tzinfo=UTC)) == 1


async def test_acknowledged_referral_raises_nothing(db: Database) -> None:
    referral_id = _sent_referral(db)
    service = _service()
    clock = FixedClock(datetime(2026, 11, 27, 9, tzinfo=UTC))
    await record_status(db, referral_id, "accepted", service=service, clock=clock)
    assert await _fired_at(db, service, datetime(2026, 12, 10, tzinfo=UTC)) == 0


async def test_receipt_counts_only_when_configured(db: Database) -> None:
    referral_id = _sent_referral(db)
    clock = FixedClock(THURSDAY)
    await record_status(db, referral_id, "received", service=_service(), clock=clock)
    later = datetime(2026, 12, 10, tzinfo=UTC)
    assert await _fired_at(db, _service(receipt_is_acknowledgement=True), later) == 0
    assert await _fired_at(db, _service(), later) == 1


async def test_status_is_polled_back_and_mirrored_in_the_practice_record(
    db: Database, mock_fhir_factory: MockFhirFactory
) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    practice = mock_fhir_factory(patients=0)
    service = _service(housing.base_url)
    clock = FixedClock(THURSDAY)
    referral_id = _sent_referral(db)
    transport = transport_for(service, clock=clock)
    receipt = await transport.deliver(envelope(service))
    with db.session() as session:
        row = session.get(Referral, referral_id)
        assert row is not None
        row.remote_task_url = receipt.remote_ref
        session.add(row)
    assert receipt.remote_ref is not None
    admin = housing.base_url.rsplit("/fhir", 1)[0]
    async with (
        httpx.AsyncClient() as http,
        FhirClient(practice.base_url, clock=clock) as practice_client,
    ):
        mirror = TaskMirror({"A12345": practice_client}, clock)
        task_id = receipt.remote_ref.split("/")[1]
        moved = await http.post(
            f"{admin}/admin/tasks/{task_id}/status", json={"status": "accepted"}
        )
        moved.raise_for_status()
        changes = await poll_statuses(
            db, {"h": service}, {"h": transport}, clock=clock, mirror=mirror
        )
        assert [(c.old, c.new) for c in changes] == [("requested", "accepted")]
        assert await poll_statuses(db, {"h": service}, {"h": transport}, clock=clock) == []
        tasks = [
            t
            async for t in practice_client.search(
                "Task", {"identifier": f"{HH_REFERRAL_ID}|{referral_id}"}
            )
        ]
        assert [t["status"] for t in tasks] == ["accepted"]
        assert tasks[0]["businessStatus"]["text"] == "Accepted by the housing team"
        assert tasks[0]["for"]["reference"] == "Patient/p1"

        await record_status(
            db,
            referral_id,
            "completed",
            service=service,
            clock=clock,
            mirror=mirror,
            reason="heating fixed",
        )
        tasks = [
            t
            async for t in practice_client.search(
                "Task", {"identifier": f"{HH_REFERRAL_ID}|{referral_id}"}
            )
        ]
        assert len(tasks) == 1 and tasks[0]["status"] == "completed"
        assert tasks[0]["statusReason"]["text"] == "heating fixed"
    with db.session() as session:
        row = session.get(Referral, referral_id)
        assert row is not None and row.task_status == "completed"
    await transport.aclose()


async def test_bars_response_message_is_recorded(db: Database) -> None:
    service = BarsHousingService(
        id="h",
        name="Housing",
        transport="bars",
        fhir_base_url="http://housing.test/fhir",
        reply_endpoint="https://hh.test/bars/replies",
    )
    app = create_app(mode="housing", extensions=[BarsReceiver()])
    referral_id = _sent_referral(db)
    clock = FixedClock(THURSDAY)
    transport = transport_for(service, clock=clock, http=httpx.ASGITransport(app))
    await transport.deliver(envelope(service))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://housing.test"
    ) as admin:
        reply = await admin.post(
            f"/admin/bars/{referral_id}/status",
            json={"status": "rejected", "reason": "no capacity"},
        )
    change = await record_bars_response(db, reply.json(), {"h": service}, clock=clock)
    assert change is not None and change.new == "rejected"
    assert await record_bars_response(db, reply.json(), {"h": service}, clock=clock) is None
    assert len(bars_of(app).referrals) == 1
    await transport.aclose()
