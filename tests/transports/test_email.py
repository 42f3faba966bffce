"""Email transport against a real SMTP server on loopback (aiosmtpd) with STARTTLS."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import EmailHousingService
from healthy_homes.errors import DeliveryError
from healthy_homes.referrals.transports.base import transport_for
from healthy_homes.referrals.transports.email import SCHEMA, message_id
from tests.transports.envelopes import NOW, envelope


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Mailbox:
    """aiosmtpd handler: keeps each message and whether it came over TLS."""

    def __init__(self) -> None:
        self.messages: list[tuple[Message, bool]] = []
        self.answer: str | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.answer:
            return self.answer
        raw = envelope.original_content or b""
        self.messages.append((email.message_from_bytes(raw), session.ssl is not None))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Path, Path]:
    return _self_signed(tmp_path, "smtp")


def _server(mailbox: Mailbox, certs: tuple[Path, Path] | None) -> Controller:
    kwargs: dict[str, Any] = {}
    if certs is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(certs[0]), str(certs[1]))
        kwargs = {"tls_context": tls, "require_starttls": True}
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def mailbox(certs: tuple[Path, Path]) -> Iterator[tuple[Mailbox, Controller]]:
    box = Mailbox()
    controller = _server(box, certs)
    yield box, controller
    controller.stop()


def _service(port: int, ca_file: Path) -> EmailHousingService:
    return EmailHousingService(
        id="mail",
        name="Rural District Housing",
        transport="email",
        smtp_host="127.0.0.1",
        smtp_port=port,
        sender="referrals@healthy-homes.test",
        recipient="housing-team@district.test",
        ca_file=str(ca_file),
        timeout_seconds=5,
    )


def _attachment(message: Message, filename: str) -> bytes:
    for part in message.walk():
        if part.get_filename() == filename:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError(f"no attachment {filename}")


async def test_referral_is_sent_over_starttls_with_a_structured_attachment(
    mailbox: tuple[Mailbox, Controller], certs: tuple[Path, Path]
) -> None:
    box, controller = mailbox
    service = _service(controller.port, certs[0])
    env = envelope(service)
    transport = transport_for(service, clock=FixedClock(NOW))
    receipt = await transport.deliver(env)
    assert receipt.remote_ref == message_id(env.referral_id)
    [(message, over_tls)] = box.messages
    assert over_tls
    assert " ".join(str(message["Message-ID"]).split()) == message_id(env.referral_id)
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    text = str(body.get_payload(decode=True), "utf-8")
    assert env.referral_id in text
    for identifier in ("9990000018", "Ann", "Test", "NE29", "High Street", "1940"):
        assert identifier not in text and identifier not in str(message["Subject"])
    doc = json.loads(_attachment(message, "referral.json"))
    assert doc["schema"] == SCHEMA and doc["referral_id"] == env.referral_id
    assert doc["patient"]["nhs_number"] == "9990000018"
    assert doc["referral_form"] == ["Tenure: private rented"]
    assert b"NHS number: 9990000018" in _attachment(message, "referral.txt")

    await transport.cancel(env, "consent withdrawn")
    assert " ".join(str(box.messages[-1][0]["In-Reply-To"]).split()) == message_id(env.referral_id)
    assert await transport.poll_status(env, receipt) is None


async def test_no_starttls_means_nothing_is_sent(certs: tuple[Path, Path]) -> None:
    box = Mailbox()
    controller = _server(box, None)
    try:
        transport = transport_for(_service(controller.port, certs[0]), clock=FixedClock(NOW))
        with pytest.raises(DeliveryError) as caught:
            await transport.deliver(envelope(_service(controller.port, certs[0])))
        assert not caught.value.retryable
        assert box.messages == []
    finally:
        controller.stop()


async def test_untrusted_certificate_is_refused(
    mailbox: tuple[Mailbox, Controller], tmp_path: Path
) -> None:
    box, controller = mailbox
    other_ca, _ = _self_signed(tmp_path, "other")
    service = _service(controller.port, other_ca)
    with pytest.raises(DeliveryError) as caught:
        await transport_for(service, clock=FixedClock(NOW)).deliver(envelope(service))
    assert not caught.value.retryable
    assert box.messages == []


@pytest.mark.parametrize(("answer", "retryable"), [("451 try later", True), ("554 no", False)])
async def test_smtp_codes_decide_retry(
    mailbox: tuple[Mailbox, Controller], certs: tuple[Path, Path], answer: str, retryable: bool
) -> None:
    box, controller = mailbox
    box.answer = answer
    service = _service(controller.port, certs[0])
    with pytest.raises(DeliveryError) as caught:
        await transport_for(service, clock=FixedClock(NOW)).deliver(envelope(service))
    assert caught.value.retryable is retryable
    assert "9990000018" not in str(caught.value)
