"""'Consent and refer' sends at once over the service's own transport, as the worker would.

Real receivers on loopback: the mock FHIR server in housing mode, the mock BaRS
receiver on a server thread, and the MLLP receiver for HL7 v2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import (
    BarsHousingService,
    FhirHousingService,
)
from healthy_homes.errors import DeliveryError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.bars import BarsReceiver, bars_of
from healthy_homes.mock_server.mllp import MllpReceiver
from healthy_homes.mock_server.pytest_plugin import MockFhirFactory
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.referrals.transports.hl7v2 import control_id
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.store.models import OutboxEntry, OutboxState, Referral, ReferralStatus
from tests.delivery.helpers import received
from tests.delivery.seed import enqueue, nhs_number
from tests.referrals.test_consent_gate import NOW
from tests.transports.envelopes import hl7v2_service


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'forward.db'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
async def mllp() -> AsyncIterator[MllpReceiver]:
    server = await MllpReceiver().start()
    yield server
    await server.close()


def _state(db: Database, referral_id: str) -> tuple[Referral, OutboxEntry]:
    with db.session() as session:
        referral = session.get(Referral, referral_id)
        entry = session.exec(
            select(OutboxEntry).where(OutboxEntry.referral_id == referral_id)
        ).one()
    assert referral is not None
    return referral, entry


async def test_fhir_service_over_its_transport(
    db: Database, mock_fhir_factory: MockFhirFactory
) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    service = FhirHousingService(id="h", name="Housing", fhir_base_url=housing.base_url)
    [referral_id] = enqueue(db, 1, NOW)
    sent = await forward_referral(db, None, referral_id, service, FixedClock(NOW))
    again = await forward_referral(db, None, referral_id, service, FixedClock(NOW))
    assert received(housing) == {referral_id: 1}
    referral, entry = _state(db, referral_id)
    assert sent.status == again.status == referral.status == ReferralStatus.SENT
    assert referral.remote_task_url is not None and referral.remote_task_url.startswith("Task/")
    assert referral.task_status == "requested" and referral.attempts == 1
    assert entry.state == OutboxState.DELIVERED


async def test_hl7v2_service_over_mllp(db: Database, mllp: MllpReceiver) -> None:
    [referral_id] = enqueue(db, 1, NOW)
    await forward_referral(db, None, referral_id, hl7v2_service(mllp.port), FixedClock(NOW))
    assert list(mllp.referrals) == [referral_id]
    assert "REF^I12" in mllp.received[0] and nhs_number(0) in mllp.received[0]
    referral, entry = _state(db, referral_id)
    assert referral.status == ReferralStatus.SENT and entry.state == OutboxState.DELIVERED
    assert (referral.remote_task_url, referral.task_status) == (control_id(referral_id), "received")


async def test_a_fhir_client_given_for_a_non_fhir_service_is_not_used(
    db: Database, mllp: MllpReceiver
) -> None:
    # Callers hold a housing FHIR client; an HL7 v2 service still gets HL7 v2.
    [referral_id] = enqueue(db, 1, NOW)
    async with FhirClient("http://127.0.0.1:9/fhir") as nowhere:
        await forward_referral(db, nowhere, referral_id, hl7v2_service(mllp.port), FixedClock(NOW))
    assert list(mllp.referrals) == [referral_id]


async def test_hl7v2_refusal_is_recorded_without_patient_data(
    db: Database, mllp: MllpReceiver
) -> None:
    mllp.script.extend(["AR"])
    [referral_id] = enqueue(db, 1, NOW)
    with pytest.raises(DeliveryError) as refused:
        await forward_referral(db, None, referral_id, hl7v2_service(mllp.port), FixedClock(NOW))
    assert not refused.value.retryable
    assert nhs_number(0) not in str(refused.value)
    referral, entry = _state(db, referral_id)
    assert referral.status == ReferralStatus.PENDING and referral.last_error
    assert entry.state == OutboxState.PENDING  # the worker's to retry or dead-letter
    assert mllp.referrals == {}


async def test_bars_service_over_process_message(db: Database) -> None:
    app = create_app(mode="housing", extensions=[BarsReceiver()])
    server = ServerThread(app, "127.0.0.1", 0)
    url = server.start()
    try:
        service = BarsHousingService(
            id="bars",
            name="Borough Housing",
            ods_code="H5678",
            transport="bars",
            fhir_base_url=f"{url}/fhir",
            reply_endpoint="https://healthy-homes.test/bars/replies",
        )
        [referral_id] = enqueue(db, 1, NOW)
        await forward_referral(db, None, referral_id, service, FixedClock(NOW))
        assert list(bars_of(app).referrals) == [referral_id]
    finally:
        server.stop()
    referral, entry = _state(db, referral_id)
    assert referral.status == ReferralStatus.SENT and entry.state == OutboxState.DELIVERED
    assert referral.remote_task_url and referral.task_status == "received"
