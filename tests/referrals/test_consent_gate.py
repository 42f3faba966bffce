"""The consent gate lives in the forwarding path: no active consent, nothing leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.consent.service import withdraw
from healthy_homes.errors import ConsentRequiredError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentDecision,
    ConsentRecord,
    FlagRecord,
    Referral,
    ReferralStatus,
)
from tests.referrals.bundle_cases import BASE

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DATASET = BASE


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    database.upgrade()
    return database


def _referral(db: Database, decision: ConsentDecision, consent_patient: str = "p1") -> str:
    with db.session() as session:
        flag = FlagRecord(
            practice_ods="A12345",
            patient_id="p1",
            rule_set_version="t",
            created_at=NOW,
            updated_at=NOW,
        )
        consent = ConsentRecord(
            practice_ods="A12345",
            patient_id=consent_patient,
            flag_id=flag.id,
            decision=decision,
            recorded_by="Dr X",
            wording_version="2026-1",
            recorded_at=NOW,
        )
        referral = Referral(
            practice_ods="A12345",
            patient_id="p1",
            consent_id=consent.id,
            flag_id=flag.id,
            housing_service_id="h",
            dataset=DATASET,
            created_at=NOW,
        )
        for row in (flag, consent, referral):  # no ORM relationships: insert in FK order
            session.add(row)
            session.flush()
    return referral.id


def _service(url: str) -> HousingServiceConfig:
    return HousingServiceConfig.model_validate({"id": "h", "name": "Housing", "fhir_base_url": url})


async def _housing_service_requests(url: str) -> int:
    async with FhirClient(url) as client:
        return len([r async for r in client.search("ServiceRequest")])


@pytest.mark.parametrize(
    ("decision", "withdrawn", "other_patient", "message"),
    [
        (ConsentDecision.DECLINED, False, False, "not 'given'"),
        (ConsentDecision.GIVEN, True, False, "withdrawn"),
        (ConsentDecision.GIVEN, False, True, "another patient"),
    ],
)
async def test_forwarding_without_active_consent_is_refused(
    db: Database, mock_fhir_factory, decision, withdrawn, other_patient, message
) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    referral_id = _referral(db, decision, "p2" if other_patient else "p1")
    clock = FixedClock(NOW)
    if withdrawn:
        with db.session() as session:
            consent_id = session.get(Referral, referral_id).consent_id  # type: ignore[union-attr]
        clock.advance(timedelta(minutes=5))
        withdraw(db, consent_id, clock)
    async with FhirClient(housing.base_url) as client:
        with pytest.raises(ConsentRequiredError, match=message):
            await forward_referral(db, client, referral_id, _service(housing.base_url), clock)
    assert await _housing_service_requests(housing.base_url) == 0
    with db.session() as session:
        assert session.get(Referral, referral_id).status == ReferralStatus.PENDING  # type: ignore[union-attr]


async def test_missing_consent_is_refused(db: Database, mock_fhir_factory) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    referral_id = _referral(db, ConsentDecision.GIVEN)
    # A consent row lost (say, a partial restore) must not open the gate.
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("DELETE FROM consent")
        conn.commit()
    async with FhirClient(housing.base_url) as client:
        with pytest.raises(ConsentRequiredError, match="no recorded consent"):
            await forward_referral(
                db, client, referral_id, _service(housing.base_url), FixedClock(NOW)
            )
    assert await _housing_service_requests(housing.base_url) == 0


async def test_active_consent_lets_the_referral_through(db: Database, mock_fhir_factory) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    referral_id = _referral(db, ConsentDecision.GIVEN)
    async with FhirClient(housing.base_url) as client:
        sent = await forward_referral(
            db, client, referral_id, _service(housing.base_url), FixedClock(NOW)
        )
    assert sent.status == ReferralStatus.SENT
    assert await _housing_service_requests(housing.base_url) == 1
