"""HL7 v2 REF^I12: strict hl7apy validation, delimiter round trips, MLLP ACK handling."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from healthy_homes.clock import FixedClock
from healthy_homes.errors import DeliveryError
from healthy_homes.mock_server.mllp import MllpReceiver
from healthy_homes.referrals.transports.base import transport_for
from healthy_homes.referrals.transports.hl7v2 import (
    build_ref_i12,
    control_id,
    escape,
    parse_ref_i12,
    unescape,
)
from tests.transports.envelopes import NOW, dataset, envelope, hl7v2_service

AWKWARD = [
    "O|Brien",
    "Smith^Jones",
    "Rose~Thorn",
    "Back\\Slash",
    "Marks & Spencer",
    "\\F\\ literally",
    "all |^~\\& of them",
]


_service = hl7v2_service


def test_ref_i12_passes_strict_validation_and_parses_back() -> None:
    er7 = build_ref_i12(envelope(_service()), _service(), NOW)
    parsed = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()  # raises on any strict-level violation
    assert parsed.msh.msh_9.to_er7() == "REF^I12^REF_I12"
    assert [s.name for s in parsed.children][:2] == ["MSH", "RF1"]
    back = parse_ref_i12(er7)
    assert back.referral_id == "5e1f0000-0000-4000-8000-000000000001"
    assert back.nhs_number == "9990000018"
    assert (back.family_name, back.given_name) == ("Test", "Ann")
    assert back.notes == ["Tenure: private rented"]
    assert back.control_id == control_id(back.referral_id)


@pytest.mark.parametrize("text", AWKWARD)
def test_escape_round_trips(text: str) -> None:
    escaped = escape(text)
    assert not set("|^~&") & set(escaped)
    assert unescape(escaped) == text


@pytest.mark.parametrize("text", AWKWARD)
def test_names_and_addresses_with_delimiters_round_trip(text: str) -> None:
    data = dataset(
        family_name=text,
        given_name=f"Ann {text}",
        address_lines=[f"1 {text} Street", f"Flat {text}"],
        city=f"North {text}",
    )
    er7 = build_ref_i12(envelope(_service(), data=data), _service(), NOW)
    back = parse_ref_i12(er7)  # strict validation again
    assert (back.family_name, back.given_name) == (text, f"Ann {text}")
    assert back.address_lines == [f"1 {text} Street", f"Flat {text}"]
    assert (back.city, back.postcode) == (f"North {text}", "NE29 6AB")


@pytest.fixture
async def receiver() -> AsyncIterator[MllpReceiver]:
    server = await MllpReceiver().start()
    yield server
    await server.close()


async def test_aa_is_delivered_and_a_resend_is_held_once(receiver: MllpReceiver) -> None:
    transport = transport_for(_service(receiver.port), clock=FixedClock(NOW))
    env = envelope(_service(receiver.port))
    first = await transport.deliver(env)
    second = await transport.deliver(env)
    assert first.status == "received" and first == second
    assert first.remote_ref == control_id(env.referral_id)
    assert len(receiver.received) == 2 and list(receiver.referrals) == [env.referral_id]
    assert await transport.poll_status(env, first) == "received"
    await transport.aclose()


async def test_ae_is_retryable_then_accepted(receiver: MllpReceiver) -> None:
    receiver.script.extend(["AE"])
    transport = transport_for(_service(receiver.port), clock=FixedClock(NOW))
    env = envelope(_service(receiver.port))
    with pytest.raises(DeliveryError) as caught:
        await transport.deliver(env)
    assert caught.value.retryable
    assert "9990000018" not in str(caught.value)
    assert receiver.referrals == {}
    assert (await transport.deliver(env)).status == "received"
    assert list(receiver.referrals) == [env.referral_id]


async def test_ar_is_not_retryable(receiver: MllpReceiver) -> None:
    receiver.script.extend(["AR"])
    transport = transport_for(_service(receiver.port), clock=FixedClock(NOW))
    with pytest.raises(DeliveryError) as caught:
        await transport.deliver(envelope(_service(receiver.port)))
    assert not caught.value.retryable
    assert receiver.referrals == {}


async def test_cancel_sends_i14(receiver: MllpReceiver) -> None:
    transport = transport_for(_service(receiver.port), clock=FixedClock(NOW))
    env = envelope(_service(receiver.port))
    await transport.deliver(env)
    await transport.cancel(env, "consent withdrawn")
    assert receiver.cancelled == {env.referral_id}
    assert "REF^I14^REF_I12" in receiver.received[-1]


async def test_nobody_listening_is_retryable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = transport_for(_service(port), clock=FixedClock(NOW))
    with pytest.raises(DeliveryError) as caught:
        await transport.deliver(envelope(_service(port)))
    assert caught.value.retryable


def test_timestamps_are_utc() -> None:
    er7 = build_ref_i12(envelope(_service()), _service(), datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert "|20260601120000+0000|" in er7
