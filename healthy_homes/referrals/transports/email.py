"""Secure email transport: SMTP with STARTTLS (required) and a structured attachment.

For housing teams that only take email. The body names the service, the practice and
our referral reference and nothing about the patient; the patient's minimum dataset
travels only in the attachments (``referral.json``, schema ``healthy-homes-referral/1``,
and the same as plain text), inside the TLS session STARTTLS sets up. We refuse to
send if the server does not offer STARTTLS or its certificate does not verify.

Each message has a Message-ID derived from the referral id, so a resend after a lost
answer is recognisably the same referral to the receiving mailbox. SMTP 4xx answers
and connection failures are retryable; 5xx answers are not.

Status does not come back by email: the housing team takes the referral into the
Healthy Homes inbox (its SMTP intake, ``housing/email_intake.py``) and records progress
there. With ``fhir_base_url`` set to the team's inbox FHIR base (and ``auth`` its
token), :meth:`EmailTransport.poll_status` reads the team's Task the way the FHIR
transport does, so the closed loop records it through ``record_status``.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import EmailHousingService, HousingServiceConfig
from healthy_homes.crypto import keyed_hash
from healthy_homes.errors import ConfigError, DeliveryError
from healthy_homes.fhir.client import JSON
from healthy_homes.referrals.transports import fhir_rest
from healthy_homes.referrals.transports.base import DeliveryReceipt, ReferralEnvelope
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport

SCHEMA = "healthy-homes-referral/1"
#: The cancellation email carries the referral's withdrawal token in this header; the
#: inbox keeps only the token's hash from the referral and cancels only on a match.
WITHDRAWAL_HEADER = "X-Healthy-Homes-Withdrawal"
WITHDRAWAL_PURPOSE = "email-withdrawal"


def message_id(referral_id: str, kind: str = "referral") -> str:
    """A stable Message-ID for one referral's message of one kind."""
    return f"<{kind}.{referral_id}@healthy-homes.invalid>"


def withdrawal_token(referral_id: str) -> str:
    """The secret that lets this practice (only) withdraw one emailed referral.

    Keyed by the practice's own HMAC key, so nothing needs storing and no one without the
    key can compute it; it travels only inside the referral and its cancellation.
    """
    return keyed_hash(WITHDRAWAL_PURPOSE, referral_id)


def referral_document(envelope: ReferralEnvelope) -> dict[str, object]:
    """The structured attachment: the minimum dataset and what the team needs to act."""
    ds = envelope.dataset
    return {
        "schema": SCHEMA,
        "referral_id": envelope.referral_id,
        "withdrawal_token": withdrawal_token(envelope.referral_id),
        "correlation_id": envelope.correlation_id,
        "authored": envelope.authored.isoformat(),
        "practice_ods": envelope.practice_ods,
        "referrer": ds.referrer,
        "reason": ds.reason,
        "patient": {
            "nhs_number": ds.nhs_number,
            "given_name": ds.given_name,
            "family_name": ds.family_name,
            "birth_date": ds.birth_date,
            "address_lines": ds.address_lines,
            "city": ds.city,
            "postcode": ds.postcode,
            "phone": ds.phone,
        },
        "referral_form": ds.referral_form.note_lines() if ds.referral_form else [],
        "consent": {
            "recorded_at": envelope.consent.recorded_at.isoformat(),
            "method": envelope.consent.method,
            "wording_version": envelope.consent.wording_version,
        },
    }


def _text(doc: dict[str, object]) -> str:
    patient = doc["patient"]
    assert isinstance(patient, dict)
    lines = [
        f"Healthy Homes referral {doc['referral_id']}",
        f"From practice {doc['practice_ods']} ({doc['referrer']}) on {doc['authored']}",
        f"Reason: {doc['reason']}",
        "",
        f"Name: {patient['given_name']} {patient['family_name']}",
        f"NHS number: {patient['nhs_number']}",
        f"Date of birth: {patient['birth_date'] or 'not given'}",
        "Address: "
        + ", ".join(
            str(p) for p in [*patient["address_lines"], patient["city"], patient["postcode"]] if p
        ),
        f"Phone: {patient['phone'] or 'not given'}",
    ]
    form = doc["referral_form"]
    assert isinstance(form, list)
    return "\n".join([*lines, *(["", *form] if form else [])]) + "\n"


def build_email(
    envelope: ReferralEnvelope, service: EmailHousingService, now_clock: Clock, *, cancel: bool
) -> EmailMessage:
    """The email for a referral (or its cancellation)."""
    msg = EmailMessage()
    msg["From"] = service.sender
    msg["To"] = service.recipient
    msg["Date"] = format_datetime(now_clock.now())
    msg["Message-ID"] = message_id(envelope.referral_id, "cancel" if cancel else "referral")
    ref = envelope.referral_id
    if cancel:
        msg["Subject"] = f"Healthy Homes referral {ref}: please cancel"
        msg["In-Reply-To"] = message_id(ref)
        msg[WITHDRAWAL_HEADER] = withdrawal_token(ref)
        msg.set_content(
            f"Referral {ref} from practice {envelope.practice_ods} to {service.name} is "
            "cancelled: the patient has withdrawn consent. Please stop work on it and delete "
            "the information you hold for it.\n"
        )
        return msg
    msg["Subject"] = f"Healthy Homes referral {ref}"
    msg.set_content(
        f"A new referral for {service.name} from practice {envelope.practice_ods}.\n"
        f"Reference: {ref}\n\n"
        "The details are in the attached files (referral.json, referral.txt). Please record "
        "the referral's progress in the Healthy Homes inbox, quoting the reference.\n"
    )
    doc = referral_document(envelope)
    msg.add_attachment(
        json.dumps(doc, indent=2).encode("utf-8"),
        maintype="application",
        subtype="json",
        filename="referral.json",
    )
    msg.add_attachment(_text(doc), subtype="plain", filename="referral.txt")
    return msg


def _send_blocking(service: EmailHousingService, msg: EmailMessage, tls: ssl.SSLContext) -> None:
    with smtplib.SMTP(service.smtp_host, service.smtp_port, timeout=service.timeout_seconds) as s:
        s.ehlo()
        if not s.has_extn("starttls"):
            raise smtplib.SMTPNotSupportedError("server does not offer STARTTLS")
        s.starttls(context=tls)
        s.ehlo()
        if service.username and service.password:
            s.login(service.username, service.password.get_secret_value())
        s.send_message(msg)


class EmailTransport:
    """Sends referrals by SMTP with STARTTLS, from a worker thread (smtplib blocks)."""

    def __init__(
        self,
        service: EmailHousingService,
        clock: Clock,
        status: FhirRestTransport | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.tls = ssl.create_default_context(cafile=service.ca_file)
        #: Reads the inbox's Task for the referral (None: no status comes back).
        self.status = status

    async def _send(self, envelope: ReferralEnvelope, *, cancel: bool) -> None:
        msg = build_email(envelope, self.service, self.clock, cancel=cancel)
        where = {"practice": envelope.practice_ods, "referral": envelope.referral_id}
        name = self.service.id
        try:
            await asyncio.to_thread(_send_blocking, self.service, msg, self.tls)
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"housing service {name}: SMTP server offers no STARTTLS; not sending",
                retryable=False,
                **where,
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"housing service {name}: recipient refused (SMTP {codes})",
                retryable=all(400 <= c < 500 for c in codes),
                **where,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"housing service {name}: SMTP answered {exc.smtp_code}",
                retryable=400 <= exc.smtp_code < 500,
                **where,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"housing service {name}: SMTP certificate does not verify",
                retryable=False,
                **where,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"housing service {name}: SMTP unreachable or cut off: {type(exc).__name__}",
                retryable=True,
                **where,
            ) from exc

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        """Send the referral email; its Message-ID is the remote reference."""
        await self._send(envelope, cancel=False)
        return DeliveryReceipt(remote_ref=message_id(envelope.referral_id), status=None)

    async def cancel(self, envelope: ReferralEnvelope, reason: str) -> None:
        """Send the cancellation email (consent withdrawn)."""
        await self._send(envelope, cancel=True)

    async def poll_status(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> str | None:
        """The team's Task status in the inbox, found by our referral id (None: not set up)."""
        if self.status is None:
            return None
        # The receipt's reference is the Message-ID, not a Task: look the Task up.
        return await self.status.poll_status(envelope, DeliveryReceipt(None, receipt.status))

    async def read_task(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> JSON | None:
        """The team's Task in the inbox (status, reason, outputs); None when not set up."""
        if self.status is None:
            return None
        return await self.status.read_task(envelope, DeliveryReceipt(None, receipt.status))

    async def aclose(self) -> None:
        """One SMTP session per message; only the status reader holds connections."""
        if self.status is not None:
            await self.status.aclose()


def make(
    service: HousingServiceConfig, *, clock: Clock, http: httpx.AsyncBaseTransport | None
) -> EmailTransport:
    """The email transport for ``service`` (registry entry ``email``)."""
    if not isinstance(service, EmailHousingService):
        raise ConfigError(f"housing service {service.id}: email settings missing")
    status = fhir_rest.make(service, clock=clock, http=http) if service.fhir_base_url else None
    return EmailTransport(service, clock, status)
