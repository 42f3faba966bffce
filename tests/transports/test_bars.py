"""BaRS transport against the mock BaRS receiver: message shape, 409 de-duplication, replies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import BarsHousingService
from healthy_homes.errors import DeliveryError
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.bars import BarsReceiver, bars_of
from healthy_homes.referrals.transports.bars import EVENTS, BarsTransport, build_message
from healthy_homes.referrals.transports.base import transport_for
from tests.transports.envelopes import NOW, envelope

SERVICE = BarsHousingService(
    id="bars",
    name="Borough Housing",
    ods_code="H5678",
    transport="bars",
    fhir_base_url="http://housing.test/fhir",
    reply_endpoint="https://healthy-homes.test/bars/replies",
)


@pytest.fixture
def app() -> FastAPI:
    return create_app(mode="housing", extensions=[BarsReceiver()])


@pytest.fixture
async def transport(app: FastAPI) -> AsyncIterator[BarsTransport]:
    made = transport_for(SERVICE, clock=FixedClock(NOW), http=httpx.ASGITransport(app))
    assert isinstance(made, BarsTransport)
    yield made
    await made.aclose()


def test_message_shape() -> None:
    message = build_message(envelope(SERVICE), SERVICE)
    Bundle.model_validate(message)
    assert message["type"] == "message"
    header = message["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"] == {"system": EVENTS, "code": "servicerequest-request"}
    assert header["source"]["endpoint"] == "https://healthy-homes.test/bars/replies"
    assert header["reason"]["coding"][0]["code"] == "new"
    focus = header["focus"][0]["reference"]
    by_url = {e["fullUrl"]: e["resource"] for e in message["entry"]}
    assert by_url[focus]["resourceType"] == "ServiceRequest"
    assert by_url[focus]["intent"] == "order"
    kinds = sorted(r["resourceType"] for r in by_url.values())
    assert kinds == ["Consent", "MessageHeader", "Patient", "ServiceRequest", "Task"]


async def test_duplicate_request_id_is_delivered_already(
    app: FastAPI, transport: BarsTransport
) -> None:
    env = envelope(SERVICE)
    first = await transport.deliver(env)
    second = await transport.deliver(env)  # as after a lost answer: same X-Request-Id
    state = bars_of(app)
    assert first.status == "received" and second.remote_ref == first.remote_ref
    assert len(state.referrals) == 1 and len(state.requests) == 1
    (request_id, correlation), (again, correlation2) = state.headers
    assert request_id == again == first.remote_ref
    assert correlation == correlation2 == env.correlation_id


async def test_replies_close_the_loop_and_cancel_revokes(
    app: FastAPI, transport: BarsTransport
) -> None:
    env = envelope(SERVICE)
    receipt = await transport.deliver(env)
    assert await transport.poll_status(env, receipt) == "received"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://housing.test"
    ) as admin:
        moved = await admin.post(
            f"/admin/bars/{env.referral_id}/status", json={"status": "accepted"}
        )
        moved.raise_for_status()
    assert await transport.poll_status(env, receipt) == "accepted"
    await transport.cancel(env, "consent withdrawn")
    await transport.cancel(env, "consent withdrawn")  # 409: already cancelled
    held = bars_of(app).referrals[env.referral_id]
    assert held.service_request["status"] == "revoked"
    assert await transport.poll_status(env, receipt) == "cancelled"


async def test_refused_message_is_not_retryable(app: FastAPI) -> None:
    wrong = SERVICE.model_copy(update={"fhir_base_url": "http://housing.test/elsewhere"})
    made = transport_for(wrong, clock=FixedClock(NOW), http=httpx.ASGITransport(app))
    with pytest.raises(DeliveryError) as caught:
        await made.deliver(envelope(wrong))
    assert not caught.value.retryable
    assert "9990000018" not in str(caught.value)
    await made.aclose()
