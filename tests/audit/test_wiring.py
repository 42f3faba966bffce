"""Every disclosure and every human action leaves exactly one audit entry.

Real components: a migrated SQLite store, the delivery worker and the direct send against
a mock housing FHIR server on a loopback port, the consent service, the flag lifecycle,
the housing inbox workflow and the operator's outbox commands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from healthy_homes.accounts.sessions import DatabaseAccounts
from healthy_homes.accounts.users import add_user
from healthy_homes.audit import verify_log
from healthy_homes.audit.chain import pseudonym
from healthy_homes.clock import FixedClock
from healthy_homes.connector.delivery import outbox
from healthy_homes.consent.service import record_decision_locally, withdraw
from healthy_homes.fhir.client import FhirClient
from healthy_homes.flags.transitions import record_outcome
from healthy_homes.housing import workflow
from healthy_homes.housing.teams import set_capacity
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.store.audit_models import AuditEntry
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentDecision,
    FlagRecord,
    FlagStatus,
    HousingReferral,
    HousingTeam,
    Referral,
)
from healthy_homes.web.access import Role
from tests.delivery.seed import enqueue, service
from tests.delivery.test_worker import _worker

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'wiring.db'}")
    database.upgrade()
    yield database
    database.dispose()


def entries(db: Database) -> list[AuditEntry]:
    with db.session() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        assert verify_log(session).ok
    return list(rows)


def actions(db: Database) -> Counter[str]:
    return Counter(e.action for e in entries(db))


async def test_a_referral_delivered_by_the_worker_is_one_disclosure(
    db: Database, mock_fhir_factory
) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    ids = enqueue(db, 3, NOW)
    worker = _worker(db, housing.base_url, clock)
    try:
        assert (await worker.run_once()).delivered == 3
        assert (await worker.run_once()).handled == 0
    finally:
        await worker.aclose()
    found = entries(db)
    assert [e.action for e in found] == ["referral.disclosed"] * 3
    assert sorted(e.subject_id for e in found) == sorted(ids)
    with db.session() as session:
        referral = session.get(Referral, found[0].subject_id)
        assert referral is not None
        assert found[0].patient == pseudonym(referral.practice_ods, referral.patient_id)
    assert found[0].detail == {"service": "housing", "via": "outbox"}
    assert found[0].actor == "system" and found[0].practice_ods == "A12345"


async def test_a_direct_send_is_one_disclosure(db: Database, mock_fhir_factory) -> None:
    housing = mock_fhir_factory(mode="housing")
    clock = FixedClock(NOW)
    [referral] = enqueue(db, 1, NOW)
    async with FhirClient(housing.base_url) as client:
        await forward_referral(db, client, referral, service(housing.base_url), clock)
        await forward_referral(db, client, referral, service(housing.base_url), clock)
    [entry] = entries(db)
    assert (entry.action, entry.subject_id) == ("referral.disclosed", referral)
    assert entry.detail == {"service": "housing", "via": "direct"}


def _flag(db: Database, patient: str) -> str:
    with db.session() as session:
        flag = FlagRecord(
            practice_ods="A12345",
            patient_id=patient,
            rule_set_version="t",
            status=FlagStatus.SHOWN,
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(flag)
    return flag.id


def test_each_clinician_action_is_one_entry_and_repeats_add_none(db: Database) -> None:
    clock = FixedClock(NOW)
    for outcome, patient in [
        (FlagStatus.SNOOZED, "p-snooze"),
        (FlagStatus.NOT_APPROPRIATE, "p-na"),
        (FlagStatus.DISMISSED, "p-dismiss"),
    ]:
        flag_id = _flag(db, patient)
        for _ in range(2):  # the same outcome again is a no-op, and not audited again
            record_outcome(
                db, flag_id, outcome, by="u-clin-1", clock=clock, snooze_for=timedelta(days=1)
            )
    consents = {}
    for decision, patient in [(ConsentDecision.GIVEN, "p-yes"), (ConsentDecision.DECLINED, "p-no")]:
        flag_id = _flag(db, patient)
        for _ in range(2):
            consents[patient] = record_decision_locally(
                db, flag_id=flag_id, decision=decision, recorded_by="u-clin-1", clock=clock
            )
    for _ in range(2):
        withdraw(db, consents["p-yes"].id, clock, by="u-clin-2", reason="changed mind")
    assert actions(db) == {
        "flag.snoozed": 1,
        "flag.not-appropriate": 1,
        "flag.dismissed": 1,
        "consent.given": 1,
        "consent.declined": 1,
        "consent.withdrawn": 1,
    }
    by_action = {e.action: e for e in entries(db)}
    withdrawn = by_action["consent.withdrawn"]
    assert (withdrawn.actor, withdrawn.role) == ("u-clin-2", "clinician")
    assert withdrawn.patient == pseudonym("A12345", "p-yes")
    assert by_action["consent.given"].subject_kind == "flag"
    for entry in entries(db):  # the practice's patient id never appears in the log
        assert entry.patient is not None and not entry.patient.startswith("p-")


def _housing_referral(session: Session, n: int) -> HousingReferral:
    if session.get(HousingTeam, "team-a") is None:
        session.add(HousingTeam(id="team-a", name="Team A", token_hash="0" * 64, created_at=NOW))
        session.flush()
    row = HousingReferral(
        team_id="team-a",
        referral_identifier=f"ref-{n}",
        dataset={"practice_ods": "A12345"},
        received_at=NOW,
        updated_at=NOW,
    )
    session.add(row)
    session.flush()
    return row


def test_each_housing_officer_action_is_one_entry(db: Database) -> None:
    with db.session() as session:
        worked = _housing_referral(session, 1)
        turned_down = _housing_referral(session, 2)
        workflow.accept(session, worked, "officer-1", NOW)
        workflow.record(session, worked, "contact", "phoned", "officer-1", NOW)
        workflow.record(session, worked, "visit", "visited", "officer-1", NOW)
        workflow.complete(session, worked, ["heating-fixed"], "", "officer-1", NOW)
        workflow.decline(session, turned_down, "no-capacity", "", "officer-2", NOW)
        set_capacity(session, "team-a", 5, clock=FixedClock(NOW))
    assert actions(db) == {
        "housing.accepted": 1,
        "housing.contact": 1,
        "housing.visit": 1,
        "housing.outcome": 1,
        "housing.declined": 1,
        "housing.capacity": 1,
    }
    declined = next(e for e in entries(db) if e.action == "housing.declined")
    assert declined.actor == "officer-2" and declined.detail == {
        "team": "team-a",
        "referral": "ref-2",
    }


def test_operator_retry_and_cancel_are_one_entry_each(db: Database) -> None:
    clock = FixedClock(NOW)
    first, second = enqueue(db, 2, NOW)
    outbox.retry(db, first, clock)
    outbox.cancel(db, second, clock, "duplicate")
    outbox.cancel(db, second, clock, "duplicate")  # already cancelled: nothing happens
    found = entries(db)
    assert [(e.action, e.subject_id) for e in found] == [
        ("referral.retry", first),
        ("referral.cancel", second),
    ]
    assert found[0].role == "operator"


def test_a_sign_in_is_one_entry(db: Database) -> None:
    clock = FixedClock(NOW)
    with db.session() as session:
        user = add_user(
            session,
            username="dr.a",
            display_name="Dr A",
            role=Role.CLINICIAN,
            organisation="A12345",
            password="correct horse battery staple",
            now=NOW,
        )
    accounts = DatabaseAccounts(db, clock)
    assert accounts.sign_in("dr.a", "wrong password entirely", "127.0.0.1") is None
    assert accounts.sign_in("dr.a", "correct horse battery staple", "127.0.0.1") is not None
    # The failed attempt has its own entry (tests/audit/test_sign_in_audit.py).
    [entry] = [e for e in entries(db) if e.action == "user.signed-in"]
    assert (entry.action, entry.actor, entry.role) == ("user.signed-in", user.id, "clinician")
    assert entry.detail == {"organisation": "A12345"}
