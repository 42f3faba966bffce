"""The funnel page: a practice admin sees their own practice's funnel, chart and CSV."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from healthy_homes.accounts.users import add_user
from healthy_homes.clock import FixedClock
from healthy_homes.connector.delivery import outbox
from healthy_homes.connector.delivery.pages import create_outbox_app
from healthy_homes.flags.events import EventKind, add_event
from healthy_homes.reporting.export import to_csv
from healthy_homes.reporting.facts import record_flag_registers, record_register_counts
from healthy_homes.reporting.funnel import funnel
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord, RegisterMembership
from healthy_homes.web.access import Role
from tests.delivery.seed import SERVICE_ID, enqueue

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def _practice(db: Database, ods: str, flags: int) -> None:
    """``flags`` COPD patients flagged this month, the first one shown."""
    with db.session() as session:
        for n in range(flags):
            session.add(
                RegisterMembership(
                    practice_ods=ods, register_name="copd", patient_id=f"{ods}-{n}", updated_at=NOW
                )
            )
            flag = FlagRecord(
                practice_ods=ods,
                patient_id=f"{ods}-{n}",
                registers=["copd"],
                rule_set_version="t",
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(flag)
            session.flush()
            record_flag_registers(session, flag)
            add_event(session, flag, EventKind.RAISED, NOW)
            if n == 0:
                add_event(session, flag, EventKind.SHOWN, NOW)
        session.flush()
        record_register_counts(session, ods, NOW)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    database.upgrade()
    _practice(database, "A12345", 3)
    _practice(database, "B67890", 5)
    with database.session() as session:
        for username, role in (("admin", Role.PRACTICE_ADMIN), ("doc", Role.CLINICIAN)):
            add_user(
                session,
                username=username,
                display_name=username.title(),
                role=role,
                organisation="A12345",
                password=PASSWORD,
                now=NOW,
            )
    return database


async def _signed_in(client: httpx.AsyncClient, username: str) -> None:
    form = await client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    fields = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    assert (await client.post("/sign-in", data=fields)).status_code == 303


async def test_the_admin_sees_their_practice_only_with_chart_and_csv(db: Database) -> None:
    app = create_outbox_app(db, FixedClock(NOW), csrf_secret=b"s" * 32)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        anonymous = await client.get("/reports/funnel")
        assert anonymous.status_code in (303, 401) and "copd" not in anonymous.text
        await _signed_in(client, "admin")
        page = await client.get("/reports/funnel")
        assert page.status_code == 200
        assert "Referral funnel: A12345" in page.text and "B67890" not in page.text
        cells = re.findall(r'<td class="nhsuk-table__cell">([^<]*)</td>', page.text)
        # copd and all-registers rows: A12345, register, month, eligible 3, flagged 3, shown 1
        assert cells[:6] == ["A12345", "all registers", "2026-11", "3", "3", "1"]
        assert '<img src="/reports/funnel.svg?start=2025-11-01&amp;end=2026-11-24"' in page.text
        csv = await client.get("/reports/funnel.csv", params={"start": "2026-01-01"})
        assert csv.headers["content-disposition"].startswith("attachment")
        expected = funnel(db, start=date(2026, 1, 1), end=NOW.date(), practices=["A12345"])
        assert csv.text == to_csv(expected) and "B67890" not in csv.text
        svg = await client.get("/reports/funnel.svg")
        assert svg.headers["content-type"] == "image/svg+xml" and "<svg" in svg.text
        bad = await client.get(
            "/reports/funnel", params={"start": "2026-12-01", "end": "2026-01-01"}
        )
        assert bad.status_code == 422


async def test_a_clinician_may_not_see_the_report(db: Database) -> None:
    app = create_outbox_app(db, FixedClock(NOW), csrf_secret=b"s" * 32)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _signed_in(client, "doc")
        for path in ("/reports/funnel", "/reports/funnel.csv", "/reports/funnel.svg"):
            refused = await client.get(path)
            assert refused.status_code == 403 and "A12345-0" not in refused.text


async def test_the_page_counts_a_receipt_as_acknowledgement_where_the_service_says_so(
    db: Database,
) -> None:
    [referral_id] = enqueue(db, 1, NOW)
    clock = FixedClock(NOW)
    [held] = outbox.claim(db, "w", 10, timedelta(minutes=1), clock)
    outbox.mark_delivered(db, held, clock, remote_ref="ACK1", remote_status="received")
    texts = {}
    for services in ((), (SERVICE_ID,)):
        app = create_outbox_app(
            db, clock, csrf_secret=b"s" * 32, receipt_acknowledges=frozenset(services)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await _signed_in(client, "admin")
            texts[services] = (await client.get("/reports/funnel.csv")).text
        rows = funnel(
            db,
            start=date(NOW.year - 1, NOW.month, 1),
            end=NOW.date(),
            practices=["A12345"],
            receipt_acknowledges=services,
        )
        assert texts[services] == to_csv(rows)
    # The receiving system's receipt is an acknowledgement only for that service.
    assert texts[()] != texts[(SERVICE_ID,)]
    assert referral_id not in texts[()] + texts[(SERVICE_ID,)]
