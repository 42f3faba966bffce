"""Referrals that came by email, taken into the team's queue like FHIR ones.

The connector's email transport sends each referral with a structured attachment,
``referral.json`` (schema ``healthy-homes-referral/1``), and a withdrawal as a reply
to it (``In-Reply-To: <referral.{id}@…>``). The inbox runs an SMTP server
(:class:`MailIntake`, aiosmtpd, STARTTLS required) at which those emails arrive:

- a referral is stored once per team and referral id (the same de-duplication as the
  FHIR transaction: a resend changes nothing) and lands in the team's queue, where the
  officer accepts, declines and records progress as for any referral;
- a withdrawal cancels it and deletes the patient's details, as a FHIR cancel does, but
  only when it carries the referral's withdrawal token (see ``Withdrawal``).

The team is the recipient's local part (``north@inbox.example`` → team ``north``), in
the inbox's mail domain. Status goes back the way it does for FHIR referrals: the
connector polls the team's FHIR base for the Task (``fhir_base_url`` of the email
service), so an officer's "accept" reaches the practice through ``record_status``.

Nothing from a message is logged but the team and our referral id.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import logging
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import select
from sqlmodel.sql.expression import SelectOfScalar

from healthy_homes.clock import Clock
from healthy_homes.housing.receive import JSON, store_referral
from healthy_homes.housing.workflow import WITHDRAWABLE, withdraw_by_sender
from healthy_homes.store.db import Database
from healthy_homes.store.models import HousingReferral, HousingTeam

log = logging.getLogger(__name__)

SCHEMA = "healthy-homes-referral/1"
ATTACHMENT = "referral.json"
MAX_MESSAGE = 1_000_000
WITHDRAWAL_HEADER = "X-Healthy-Homes-Withdrawal"
#: Where the referral keeps its withdrawal token's hash (dataset is encrypted at rest).
TOKEN_KEY = "withdrawal_token_sha256"  # noqa: S105 - a dataset key, not a secret
_REFERRAL_ID = re.compile(r"<referral\.([A-Za-z0-9-]{1,64})@[^>]+>")
_MAX_TEXT = 500


class NotAReferral(ValueError):
    """The message is neither a referral nor a withdrawal in our format."""


class WithdrawalRefused(ValueError):
    """A withdrawal without the referral's withdrawal token: nothing is cancelled."""


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal email: the referral it names and the token it carries, if any."""

    referral_id: str
    token: str | None


def token_hash(token: str) -> str:
    """What the queue keeps of a referral's withdrawal token (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _text(value: object, limit: int = _MAX_TEXT) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split())[:limit] or None


@dataclass(frozen=True)
class EmailedReferral:
    """A referral as its attachment gives it: our referral id and what the queue keeps."""

    referral_id: str
    dataset: JSON
    consent: JSON
    authored: str | None


def referral_from_document(doc: Any) -> EmailedReferral:
    """The queue's fields from a ``referral.json`` document (only the minimum dataset)."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise NotAReferral(f"the attachment is not a {SCHEMA} document")
    referral_id = _text(doc.get("referral_id"), 64)
    patient = doc.get("patient")
    if referral_id is None or not isinstance(patient, dict):
        raise NotAReferral("the document has no referral id or patient")
    nhs = _text(patient.get("nhs_number"), 20)
    if nhs is None:
        raise NotAReferral("the patient has no NHS number")
    consent = doc.get("consent") if isinstance(doc.get("consent"), dict) else {}
    assert isinstance(consent, dict)
    lines = patient.get("address_lines") if isinstance(patient.get("address_lines"), list) else []
    form = doc.get("referral_form") if isinstance(doc.get("referral_form"), list) else []
    assert isinstance(lines, list) and isinstance(form, list)
    dataset = {
        "nhs_number": nhs,
        "given_name": _text(patient.get("given_name"), 120) or "",
        "family_name": _text(patient.get("family_name"), 120) or "",
        "birth_date": _text(patient.get("birth_date"), 10),
        "address_lines": [x for x in (_text(v, 120) for v in lines) if x],
        "city": _text(patient.get("city"), 80),
        "postcode": _text(patient.get("postcode"), 10),
        "phone": _text(patient.get("phone"), 40),
        "practice_ods": _text(doc.get("practice_ods"), 10),
        "referrer": _text(doc.get("referrer"), 120),
        "reason": _text(doc.get("reason"), 200),
        "notes": [x for x in (_text(n) for n in form) if x],
    }
    token = _text(doc.get("withdrawal_token"), 128)
    if token is not None:
        dataset[TOKEN_KEY] = token_hash(token)
    summary = {
        "identifier": None,
        "dateTime": _text(consent.get("recorded_at"), 40),
        "source": f"{_text(consent.get('method'), 20) or 'recorded'} consent, wording "
        f"{_text(consent.get('wording_version'), 40) or 'unknown'} (by email)",
    }
    return EmailedReferral(referral_id, dataset, summary, _text(doc.get("authored"), 40))


def _attachment(message: EmailMessage) -> bytes | None:
    for part in message.walk():
        if part.get_filename() == ATTACHMENT:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


def withdrawal_of(message: EmailMessage) -> Withdrawal | None:
    """The withdrawal the message asks for (a reply to a referral), if it is one."""
    if _attachment(message) is not None:
        return None
    found = _REFERRAL_ID.search(str(message.get("In-Reply-To") or ""))
    if found is None:
        return None
    return Withdrawal(found.group(1), _text(message.get(WITHDRAWAL_HEADER), 128))


def parse_message(raw: bytes) -> EmailedReferral | Withdrawal:
    """A referral (its attachment), or the withdrawal of one."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    withdrawn = withdrawal_of(message)
    if withdrawn is not None:
        return withdrawn
    payload = _attachment(message)
    if payload is None:
        raise NotAReferral(f"no {ATTACHMENT} attachment")
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise NotAReferral(f"{ATTACHMENT} is not JSON") from exc
    return referral_from_document(doc)


@dataclass(frozen=True)
class Taken:
    """What one message did to one team's queue."""

    team_id: str
    referral_id: str
    row_id: str | None
    created: bool = False
    withdrawn: bool = False


def take_message(db: Database, team_id: str, raw: bytes, clock: Clock) -> Taken:
    """Put an emailed referral in the team's queue, or withdraw one; safe to repeat."""
    parsed = parse_message(raw)
    now = clock.now()
    if isinstance(parsed, Withdrawal):
        with db.session() as session:
            row = session.exec(_by_referral(team_id, parsed.referral_id)).first()
            if row is None or row.status not in WITHDRAWABLE:
                # Unknown or already closed: a repeat changes nothing, forged or not.
                return Taken(team_id, parsed.referral_id, row.id if row else None)
            if not _token_matches(row, parsed.token):
                raise WithdrawalRefused(f"referral {parsed.referral_id}: no matching token")
            changed = withdraw_by_sender(row, now)
            session.add(row)
        return Taken(team_id, parsed.referral_id, row.id, withdrawn=changed)
    row, created = store_referral(
        db,
        team_id,
        parsed.referral_id,
        parsed.dataset,
        parsed.consent,
        priority="routine",
        authored=parsed.authored,
        now=now,
    )
    return Taken(team_id, parsed.referral_id, row.id, created=created)


def _token_matches(row: HousingReferral, token: str | None) -> bool:
    # Envelope senders are forgeable: only the practice that sent the referral has its
    # token. A referral stored without one (before tokens) is never withdrawn by email.
    stored = row.dataset.get(TOKEN_KEY)
    if token is None or not isinstance(stored, str):
        return False
    return hmac.compare_digest(token_hash(token), stored)


def _by_referral(team_id: str, referral_id: str) -> SelectOfScalar[HousingReferral]:
    return select(HousingReferral).where(
        HousingReferral.team_id == team_id, HousingReferral.referral_identifier == referral_id
    )


class IntakeHandler:
    """aiosmtpd handler: accepts mail for existing teams only, takes each message in."""

    def __init__(
        self, db: Database, clock: Clock, domain: str, senders: Iterable[str] | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.domain = domain.lower()
        self.senders = {s.lower() for s in senders} if senders is not None else None
        self.taken: list[Taken] = []

    def team_for(self, address: str) -> str | None:
        """The team a recipient address names, if it is one of ours and the team exists."""
        local, _, domain = address.lower().partition("@")
        if domain != self.domain:
            return None
        with self.db.session() as session:
            return local if session.get(HousingTeam, local) is not None else None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.senders is not None and address.lower() not in self.senders:
            return "550 5.7.1 sender not accepted here"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.team_for(address) is None:
            return "550 5.1.1 no such housing team mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > MAX_MESSAGE:
            return "552 5.3.4 message too big"
        teams = {t for t in (self.team_for(a) for a in envelope.rcpt_tos) if t}
        try:
            for team in sorted(teams):
                done = take_message(self.db, team, raw, self.clock)
                self.taken.append(done)
                log.info(
                    "emailed referral %s for team %s: %s",
                    done.referral_id,
                    team,
                    "withdrawn" if done.withdrawn else "new" if done.created else "already here",
                )
        except WithdrawalRefused as exc:
            log.warning("withdrawal refused for team(s) %s: %s", ",".join(sorted(teams)), exc)
            return "550 5.7.1 withdrawal not accepted: it does not carry the referral's token"
        except NotAReferral as exc:
            log.info("email refused for team(s) %s: %s", ",".join(sorted(teams)), exc)
            return "554 5.6.0 not a Healthy Homes referral: " + str(exc)
        return "250 OK"


def server_tls(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The TLS context the intake offers with STARTTLS (its certificate and key)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def _free_port(host: str) -> int:
    # aiosmtpd needs the port before it starts (it connects to itself to check).
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


class MailIntake:
    """The inbox's SMTP server on ``host:port``, STARTTLS required (``tls`` holds the cert)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        domain: str,
        tls: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 0,
        senders: Iterable[str] | None = None,
    ) -> None:
        self.handler = IntakeHandler(db, clock, domain, senders)
        self._controller = Controller(
            self.handler,
            hostname=host,
            port=port or _free_port(host),
            tls_context=tls,
            require_starttls=True,
            data_size_limit=MAX_MESSAGE,
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._controller.port)

    def start(self) -> MailIntake:
        """Start serving (in aiosmtpd's own thread)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()
