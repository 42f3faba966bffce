"""Email referrals end to end over loopback, and their status back to the practice.

Practice side: a real connector database, a mock practice FHIR server, the clinician's
consent, and the delivery worker sending over SMTP with STARTTLS. Housing side: the
inbox's SMTP intake (aiosmtpd) putting the email into the team's queue, an officer
accepting it on the inbox's page, and the closed loop reading the team's Task back
into the practice's referral and its Task mirror.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import DeliveryConfig, EmailHousingService
from healthy_homes.connector.closed_loop import ClosedLoop
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.consent.actions import ClinicianActions, ReferralOutcome
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.housing.email_intake import WITHDRAWAL_HEADER, MailIntake, server_tls
from healthy_homes.referrals.transports.email import withdrawal_token
from healthy_homes.store.db import Database
from healthy_homes.store.models import HousingReferral, Referral
from tests.consent.conftest import desk_for, flag_for
from tests.flags.world import CLINICIAN, NOW, PRACTICE, fresh_db, practice_server
from tests.housing.test_pages_http import _sign_in
from tests.housing.world import Inbox
from tests.transports.test_email import _self_signed

DOMAIN = "inbox.test"


@pytest.fixture
def intake(inbox: Inbox, tmp_path: Path) -> Iterator[tuple[MailIntake, Path]]:
    cert, key = _self_signed(tmp_path, "inbox-smtp")
    tls = server_tls(str(cert), str(key))
    running = MailIntake(inbox.db, inbox.clock, domain=DOMAIN, tls=tls).start()
    try:
        yield running, cert
    finally:
        running.stop()


def _service(inbox: Inbox, port: int, ca_file: Path) -> EmailHousingService:
    return EmailHousingService.model_validate(
        {
            "id": "north-mail",
            "name": "North Healthy Homes",
            "transport": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "sender": "referrals@practice.test",
            "recipient": f"north@{DOMAIN}",
            "ca_file": str(ca_file),
            "timeout_seconds": 5,
            # Status comes back from the team's FHIR base in the inbox, with its token.
            "fhir_base_url": inbox.base("north"),
            "auth": {"kind": "bearer", "token": inbox.tokens["north"]},
        }
    )


def connector_db(tmp_path: Path) -> Database:
    """The practice side's own database."""
    (tmp_path / "practice").mkdir()
    return fresh_db(tmp_path / "practice")


async def _emailed(desk: ClinicianActions, service: EmailHousingService) -> ReferralOutcome:
    """Consent for the flagged patient, emailed at once by the clinician's click."""
    flag = await flag_for(desk)
    outcome = await desk.consent(flag.id, recorded_by=CLINICIAN)
    assert outcome.sent, outcome.error  # over the service's own transport (SMTP)
    worker = DeliveryWorker(desk.db, [service], DeliveryConfig(), clock=desk.clock)
    assert (await worker.run_once()).delivered == 0  # once: nothing left for the worker
    await worker.aclose()
    return outcome


def _queued(inbox: Inbox, referral_id: str) -> list[HousingReferral]:
    with inbox.db.session() as session:
        query = select(HousingReferral).where(HousingReferral.referral_identifier == referral_id)
        return list(session.exec(query))


async def test_an_emailed_referral_is_accepted_in_the_inbox_and_the_practice_sees_it(
    inbox: Inbox, intake: tuple[MailIntake, Path], tmp_path: Path, mock_fhir_factory: Any
) -> None:
    mail, ca_file = intake
    service = _service(inbox, mail.port, ca_file)
    db, clock = connector_db(tmp_path), FixedClock(NOW)
    practice = practice_server(mock_fhir_factory)
    try:
        async with FhirClient(practice.base_url, practice=PRACTICE) as practice_client:
            desk = desk_for(db, practice_client, service, clock)
            outcome = await _emailed(desk, service)
            referral_id = outcome.referral.id

            # The email is in the north team's queue, once, with the minimum dataset.
            [row] = _queued(inbox, referral_id)
            assert row.team_id == "north" and row.status == "received"
            sent = outcome.referral.dataset
            assert row.dataset["nhs_number"] == sent["nhs_number"]
            assert row.dataset["family_name"] == sent["family_name"]
            assert row.dataset["practice_ods"] == PRACTICE

            # Before anyone acts, the closed loop sees it waiting there.
            loop = ClosedLoop(db, [service], {PRACTICE: practice_client}, clock)
            try:
                first = await loop.run_once()
                assert [c.new for c in first.changes] == ["received"]

                officer, token = _sign_in(inbox, "north")
                queue = officer.get("/")
                assert sent["family_name"] in queue.text
                accepted = officer.post(f"/referrals/{row.id}/accept", data={"csrf_token": token})
                assert accepted.status_code == 303
                officer.close()

                second = await loop.run_once()
                assert [(c.referral_id, c.new) for c in second.changes] == [
                    (referral_id, "accepted")
                ]
            finally:
                await loop.aclose()
        with db.session() as session:
            stored = session.get(Referral, referral_id)
        assert stored is not None and stored.task_status == "accepted"
        # ...and written back to the practice record, where the clinician sees it.
        async with httpx.AsyncClient(base_url=practice.base_url) as http:
            found = await http.get(
                "/Task", params={"identifier": f"{HH_REFERRAL_ID}|{referral_id}"}
            )
        mirror = found.json()
        assert [e["resource"]["status"] for e in mirror["entry"]] == ["accepted"]
    finally:
        db.dispose()


async def test_a_withdrawal_email_cancels_it_and_deletes_the_details(
    inbox: Inbox, intake: tuple[MailIntake, Path], tmp_path: Path, mock_fhir_factory: Any
) -> None:
    mail, ca_file = intake
    service = _service(inbox, mail.port, ca_file)
    db, clock = connector_db(tmp_path), FixedClock(NOW)
    practice = practice_server(mock_fhir_factory)
    try:
        async with FhirClient(practice.base_url, practice=PRACTICE) as practice_client:
            desk = desk_for(db, practice_client, service, clock)
            outcome = await _emailed(desk, service)
            withdrawn = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
            assert withdrawn.recalled == [outcome.referral.id]
        [row] = _queued(inbox, outcome.referral.id)
        assert row.status == "cancelled"
        assert row.dataset == {"practice_ods": PRACTICE}  # no patient details kept
        assert inbox.task("north", outcome.referral.id)["status"] == "cancelled"
    finally:
        db.dispose()


def test_mail_for_an_unknown_team_or_without_the_attachment_is_refused(
    inbox: Inbox, intake: tuple[MailIntake, Path]
) -> None:
    mail, ca_file = intake
    tls = ssl.create_default_context(cafile=str(ca_file))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "x@practice.test", "y", "hello"
    message.set_content("no attachment here")
    with smtplib.SMTP("127.0.0.1", mail.port, timeout=5) as smtp:
        smtp.starttls(context=tls)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.send_message(message, to_addrs=[f"nobody@{DOMAIN}"])
        with pytest.raises(smtplib.SMTPDataError, match="not a Healthy Homes referral"):
            smtp.send_message(message, to_addrs=[f"north@{DOMAIN}"])
    assert mail.handler.taken == []


def _forged_withdrawal(referral_id: str, token: str | None) -> EmailMessage:
    """What anyone who can reach the port and knows the id could send."""
    message = EmailMessage()
    message["From"] = "referrals@practice.test"  # the allowed sender: forgeable
    message["To"] = f"north@{DOMAIN}"
    message["Subject"] = f"Healthy Homes referral {referral_id}: please cancel"
    message["In-Reply-To"] = f"<referral.{referral_id}@healthy-homes.invalid>"
    if token is not None:
        message[WITHDRAWAL_HEADER] = token
    message.set_content("cancelled")
    return message


async def test_a_forged_withdrawal_deletes_nothing_and_the_genuine_one_still_works(
    inbox: Inbox, intake: tuple[MailIntake, Path], tmp_path: Path, mock_fhir_factory: Any
) -> None:
    mail, ca_file = intake
    service = _service(inbox, mail.port, ca_file)
    db, clock = connector_db(tmp_path), FixedClock(NOW)
    practice = practice_server(mock_fhir_factory)
    try:
        async with FhirClient(practice.base_url, practice=PRACTICE) as practice_client:
            desk = desk_for(db, practice_client, service, clock)
            outcome = await _emailed(desk, service)
            referral_id = outcome.referral.id
            tls = ssl.create_default_context(cafile=str(ca_file))
            with smtplib.SMTP("127.0.0.1", mail.port, timeout=5) as smtp:
                smtp.starttls(context=tls)
                for token in (None, "0" * 64, withdrawal_token("another-referral")):
                    with pytest.raises(smtplib.SMTPDataError, match="withdrawal not accepted"):
                        smtp.send_message(_forged_withdrawal(referral_id, token))
            [row] = _queued(inbox, referral_id)
            assert row.status == "received" and row.dataset["nhs_number"]  # all still there
            withdrawn = await desk.withdraw(outcome.consent.id, recorded_by=CLINICIAN)
            assert withdrawn.recalled == [referral_id]
        [row] = _queued(inbox, referral_id)
        assert row.status == "cancelled" and row.dataset == {"practice_ods": PRACTICE}
    finally:
        db.dispose()
