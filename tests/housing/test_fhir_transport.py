"""The connector's own FHIR REST transport against the inbox: deliver, poll, recall."""

from __future__ import annotations

from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import AuthConfig, FhirHousingService
from healthy_homes.housing import workflow
from healthy_homes.referrals.transports.base import ReferralEnvelope
from healthy_homes.referrals.transports.fhir_rest import make
from healthy_homes.store.models import ConsentDecision, ConsentRecord, HousingReferral
from tests.housing.world import START, Inbox, dataset


def _envelope(inbox: Inbox, referral_id: str, n: int) -> ReferralEnvelope:
    service = FhirHousingService(
        id="north",
        name="North Healthy Homes",
        fhir_base_url=inbox.base("north"),  # type: ignore[arg-type]
        auth=AuthConfig(kind="bearer", token=inbox.tokens["north"]),  # type: ignore[arg-type]
    )
    consent = ConsentRecord(
        id=f"consent-{referral_id}",
        practice_ods="C84001",
        patient_id="pat-1",
        decision=ConsentDecision.GIVEN,
        recorded_by="Dr Jane Example",
        wording_version="2026-11",
        recorded_at=START,
    )
    return ReferralEnvelope(
        referral_id=referral_id,
        practice_ods="C84001",
        dataset=dataset(n),
        consent=consent,
        service=service,
        authored=START,
        correlation_id=f"corr-{referral_id}",
    )


async def test_delivered_twice_arrives_once_and_the_officer_s_moves_are_polled(
    inbox: Inbox,
) -> None:
    envelope = _envelope(inbox, "tr-1", 31)
    transport = make(envelope.service, clock=FixedClock(START), http=None)
    try:
        first = await transport.deliver(envelope)
        second = await transport.deliver(envelope)  # the acknowledgement was "lost"
        assert first.remote_ref == second.remote_ref and first.remote_ref
        with inbox.db.session() as session:
            rows = session.exec(select(HousingReferral)).all()
            assert len(rows) == 1
            row = rows[0]
            assert f"Task/{row.id}" == first.remote_ref
        assert await transport.poll_status(envelope, first) == "received"

        with inbox.db.session() as session:
            current = workflow.team_referral(session, "north", row.id)
            assert current is not None
            workflow.accept(session, current, "Olive North", START)
        assert await transport.poll_status(envelope, first) == "accepted"

        await transport.cancel(envelope, "consent withdrawn")
        await transport.cancel(envelope, "consent withdrawn")  # safe to repeat
        assert await transport.poll_status(envelope, first) == "cancelled"
        with inbox.db.session() as session:
            gone = session.get(HousingReferral, row.id)
            assert gone is not None and "nhs_number" not in gone.dataset
    finally:
        await transport.aclose()


async def test_an_inbox_that_takes_one_referral_a_transaction_gets_them_one_at_a_time(
    inbox: Inbox,
) -> None:
    """The inbox refuses a combined transaction whole; each referral then goes alone."""
    envelopes = [_envelope(inbox, f"many-{n}", 60 + n) for n in range(4)]
    service = envelopes[0].service.model_copy(update={"referrals_per_request": 4})
    transport = make(service, clock=FixedClock(START), http=None)
    try:
        assert transport.per_request == 4
        first = await transport.deliver_many(envelopes[:2])
        assert transport.per_request == 1  # it refused the pair but took each alone
        rest = await transport.deliver_many(envelopes[2:])
    finally:
        await transport.aclose()
    receipts = [*first, *rest]
    with inbox.db.session() as session:
        rows = {row.referral_identifier: row for row in session.exec(select(HousingReferral)).all()}
    assert sorted(rows) == sorted(e.referral_id for e in envelopes)
    for envelope, receipt in zip(envelopes, receipts, strict=True):
        assert not isinstance(receipt, Exception)
        assert receipt.remote_ref == f"Task/{rows[envelope.referral_id].id}"
