"""HL7 v2.5 REF^I12 over MLLP, built and validated with hl7apy.

Events: I12 (new referral) and I14 (cancel: consent withdrawn).
Segments: MSH, RF1 (status pending, routine, home care, originating referral id =
our referral id), PRD x2 (RP referring practice; RT the housing service), PID (NHS
number, name, birth date, home address, phone) and one NTE per referral form answer.

Free text is escaped by :func:`escape` before hl7apy sees it (``\\`` first, then the
delimiters ``| ^ ~ &`` as ``\\F\\ \\S\\ \\R\\ \\T\\``; CR/LF as ``\\X0D\\``/``\\X0A\\``), so a
name like ``O|Brien^Smith`` stays one component. hl7apy's own escaping leaves our
sequences alone (every backslash we emit is part of one).

Acknowledgements (original mode, MSA-1):

- ``AA`` accepted: delivered; the receipt's status is ``received``.
- ``AE`` application error: **retryable**. The receiver hit an error while processing
  (most often its own: a locked record, a database down); the same message may be
  accepted later, and it is idempotent (stable MSH-10 and RF1-6), so a resend never
  duplicates. A content error that persists ends in the worker's dead-letter after its
  attempt cap, not in a silent loop.
- ``AR`` application reject: **not retryable**. The receiver refused the message itself
  (type, version, processing id, or its own rules); identical bytes will be refused
  again, so it goes straight to an operator instead of consuming retries.

HL7 v2 has no status query here: the closed loop for this transport is the ACK.
"""

from __future__ import annotations

import re
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from healthy_homes.clock import Clock
from healthy_homes.config.models import Hl7v2HousingService, HousingServiceConfig
from healthy_homes.errors import ConfigError, DeliveryError
from healthy_homes.referrals.transports import mllp
from healthy_homes.referrals.transports.base import DeliveryReceipt, ReferralEnvelope

VERSION = "2.5"
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\"))
_CONTROL = (("\r", "\\X0D\\"), ("\n", "\\X0A\\"))
_SEQUENCE = re.compile(r"\\(F|S|R|T|E|X[0-9A-Fa-f]+|H|N)\\")
_UNESCAPE = {"F": "|", "S": "^", "R": "~", "T": "&", "E": "\\", "H": "", "N": ""}


def escape(text: str) -> str:
    """Text safe inside one HL7 v2 component (default delimiters ``|^~\\&``)."""
    for char, sequence in (*_ESCAPES, *_CONTROL):
        text = text.replace(char, sequence)
    return text


def unescape(text: str) -> str:
    """The text an escaped component stands for."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("X"):
            return bytes.fromhex(code[1:]).decode("latin-1")
        return _UNESCAPE[code]

    return _SEQUENCE.sub(one, text)


def control_id(referral_id: str, event: str = "I12") -> str:
    """MSH-10, stable per referral and event (20 characters): a resend is the same message."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"healthy-homes:hl7v2:{event}:{referral_id}").hex[:20]


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def build_ref_i12(
    envelope: ReferralEnvelope, service: Hl7v2HousingService, now: datetime, *, event: str = "I12"
) -> str:
    """The REF^I12 (or I14, cancel) for ``envelope`` as ER7, validated at the strict level."""
    ds = envelope.dataset
    msg = Message("REF_I12", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    msg.msh.msh_3 = escape(service.sending_application)
    msg.msh.msh_4 = escape(envelope.practice_ods)
    msg.msh.msh_5 = escape(service.receiving_application)
    if service.receiving_facility or service.ods_code:
        msg.msh.msh_6 = escape(service.receiving_facility or service.ods_code or "")
    msg.msh.msh_7 = _ts(now)
    msg.msh.msh_9 = f"REF^{event}^REF_I12"
    msg.msh.msh_10 = control_id(envelope.referral_id, event)
    msg.msh.msh_11 = "P"
    msg.msh.msh_12 = VERSION
    msg.msh.msh_15 = "AL"
    msg.msh.msh_16 = "NE"

    rf1 = msg.add_segment("RF1")
    rf1.rf1_1 = "P^Pending^HL70283" if event == "I12" else "E^Expired^HL70283"
    rf1.rf1_2 = "R^Routine^HL70280"
    rf1.rf1_3 = "Hom^Home Care^HL70281"
    rf1.rf1_6 = f"{envelope.referral_id}^HEALTHY_HOMES"
    rf1.rf1_7 = _ts(envelope.authored)
    rf1.rf1_10 = f"^{escape(ds.reason)}"

    referring = msg.add_group("REF_I12_PROVIDER_CONTACT").add_segment("PRD")
    referring.prd_1 = "RP^Referring Provider^HL70286"
    referring.prd_2 = escape(ds.referrer)
    referring.prd_7 = f"{escape(ds.practice_ods)}^ODS"
    referred = msg.add_group("REF_I12_PROVIDER_CONTACT").add_segment("PRD")
    referred.prd_1 = "RT^Referred to Provider^HL70286"
    referred.prd_2 = escape(service.name)
    if service.ods_code:
        referred.prd_7 = f"{escape(service.ods_code)}^ODS"

    pid = msg.add_segment("PID")
    pid.pid_3 = f"{escape(ds.nhs_number)}^^^NHS^NH"
    pid.pid_5 = f"{escape(ds.family_name)}^{escape(ds.given_name)}^^^^^L"
    if ds.birth_date:
        pid.pid_7 = ds.birth_date.replace("-", "")
    lines = ds.address_lines or [""]
    other = ", ".join(lines[1:])
    city, postcode = escape(ds.city or ""), escape(ds.postcode or "")
    pid.pid_11 = f"{escape(lines[0])}^{escape(other)}^{city}^^{postcode}^^H"
    if ds.phone:
        pid.pid_13 = f"{escape(ds.phone)}^PRN^PH"

    notes = ds.referral_form.note_lines() if ds.referral_form else []
    for i, line in enumerate(notes, start=1):
        nte = msg.add_segment("NTE")
        nte.nte_1 = str(i)
        nte.nte_3 = escape(line)
    msg.validate()
    text: str = msg.to_er7()
    return text


@dataclass(frozen=True)
class ParsedReferral:
    """What a receiver reads back out of a REF^I12 (unescaped)."""

    control_id: str
    referral_id: str
    nhs_number: str
    family_name: str
    given_name: str
    address_lines: list[str]
    city: str
    postcode: str
    notes: list[str]


def _component(field: str, index: int) -> str:
    parts = field.split("^")
    return unescape(parts[index]) if index < len(parts) else ""


def parse_ref_i12(er7: str) -> ParsedReferral:
    """Parse and strictly validate a REF^I12; the inverse of :func:`build_ref_i12`."""
    msg = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    msg.validate()
    pid, rf1 = msg.pid, msg.rf1
    address = pid.pid_11.to_er7()
    line1, other = _component(address, 0), _component(address, 1)
    return ParsedReferral(
        control_id=msg.msh.msh_10.to_er7(),
        referral_id=_component(rf1.rf1_6.to_er7(), 0),
        nhs_number=_component(pid.pid_3.to_er7(), 0),
        family_name=_component(pid.pid_5.to_er7(), 0),
        given_name=_component(pid.pid_5.to_er7(), 1),
        address_lines=[line1, *([other] if other else [])],
        city=_component(address, 2),
        postcode=_component(address, 4),
        notes=[unescape(nte.nte_3.to_er7()) for nte in msg.children if nte.name == "NTE"],
    )


@dataclass(frozen=True)
class Ack:
    """MSA of an acknowledgement."""

    code: str
    control_id: str
    text: str


def parse_ack(er7: str) -> Ack:
    """The MSA of an ACK (tolerant: receivers vary in what else they send)."""
    msg = parse_message(er7, validation_level=VALIDATION_LEVEL.TOLERANT)
    msa = msg.msa
    return Ack(
        code=msa.msa_1.to_er7(),
        control_id=msa.msa_2.to_er7(),
        text=unescape(msa.msa_3.to_er7()) if msa.msa_3 else "",
    )


class Hl7v2Transport:
    """Sends REF^I12 over MLLP and reads the ACK."""

    def __init__(self, service: Hl7v2HousingService, clock: Clock) -> None:
        self.service = service
        self.clock = clock
        self._tls: ssl.SSLContext | None = None
        if service.tls:
            self._tls = ssl.create_default_context(cafile=service.ca_file)

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        """Send REF^I12 and classify the ACK: AA delivered, AE retryable, AR not."""
        sent_id = await self._send(envelope, "I12")
        return DeliveryReceipt(remote_ref=sent_id, status="received")

    async def cancel(self, envelope: ReferralEnvelope, reason: str) -> None:
        """Send REF^I14 (cancel patient referral), acknowledged like the referral."""
        await self._send(envelope, "I14")

    async def _send(self, envelope: ReferralEnvelope, event: str) -> str:
        where = {"practice": envelope.practice_ods, "referral": envelope.referral_id}
        try:
            message = build_ref_i12(envelope, self.service, self.clock.now(), event=event)
        except HL7apyException as exc:
            raise DeliveryError(
                f"referral does not make a valid REF^{event}: {type(exc).__name__}",
                retryable=False,
                **where,
            ) from exc
        answer = await mllp.exchange(
            self.service.mllp_host,
            self.service.mllp_port,
            message,
            ack_seconds=self.service.timeout_seconds,
            tls=self._tls,
            referral=envelope.referral_id,
        )
        try:
            ack = parse_ack(answer)
        except (HL7apyException, AttributeError, ValueError) as exc:
            raise DeliveryError(
                "housing MLLP peer answered with something that is not an ACK",
                retryable=True,
                **where,
            ) from exc
        sent_id = control_id(envelope.referral_id, event)
        if ack.control_id != sent_id:
            raise DeliveryError(
                "ACK is for another message (MSA-2 does not match MSH-10)", retryable=True, **where
            )
        if ack.code in ("AA", "CA"):
            return sent_id
        # The receiver's MSA-3 text is theirs; it is kept out of our message in case it
        # quotes the patient back.
        if ack.code in ("AE", "CE"):
            raise DeliveryError(
                f"housing service {self.service.id} answered AE (application error)",
                retryable=True,
                **where,
            )
        raise DeliveryError(
            f"housing service {self.service.id} answered {ack.code or 'no code'} "
            "(application reject)",
            retryable=False,
            **where,
        )

    async def poll_status(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> str | None:
        """The ACK is the whole loop for v2: the receipt's status."""
        return receipt.status

    async def aclose(self) -> None:
        """Nothing pooled: one connection per message."""


def make(
    service: HousingServiceConfig, *, clock: Clock, http: httpx.AsyncBaseTransport | None
) -> Hl7v2Transport:
    """The HL7 v2 transport for ``service`` (registry entry ``hl7v2``)."""
    if not isinstance(service, Hl7v2HousingService):
        raise ConfigError(f"housing service {service.id}: hl7v2 settings missing")
    return Hl7v2Transport(service, clock)
