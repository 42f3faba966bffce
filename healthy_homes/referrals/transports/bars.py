"""NHS BaRS-style transport: a message Bundle to ``$process-message``.

The Bundle (type ``message``) starts with a MessageHeader: eventCoding
``servicerequest-request`` from ``https://fhir.nhs.uk/CodeSystem/message-events-bars``,
reason ``new`` (``delete`` to cancel), focus → the ServiceRequest, ``source.endpoint`` =
our reply endpoint, destination = the housing service. The other entries are the
referral's Patient, Consent, ServiceRequest and Task from ``referrals/bundle.py``.

Headers: ``X-Correlation-Id`` is the envelope's correlation id (the conversation).
``X-Request-Id`` names one *message*, not one TCP attempt: it is derived from the
referral id and the event, so every retry of the same message carries the same id. A
receiver that already processed it answers 409, which we read as "delivered already"
(the answer we lost was a success). A new message (the cancel) gets its own id.

Replies (``servicerequest-response``) carry a Task whose status is the closed loop;
:func:`status_from_response` reads one, whether polled or pushed to our endpoint.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle

from healthy_homes.clock import Clock
from healthy_homes.config.models import BarsHousingService, HousingServiceConfig
from healthy_homes.errors import RETRYABLE_STATUS, ConfigError, DeliveryError
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import to_json
from healthy_homes.fhir.systems import ODS_ORGANISATION
from healthy_homes.fhir.tls import verify_for
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.transports.base import DeliveryReceipt, ReferralEnvelope

EVENTS = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
REASONS = "https://fhir.nhs.uk/CodeSystem/message-reason-bars"
FHIR_JSON = "application/fhir+json"


def message_id(referral_id: str, reason: str) -> str:
    """Bundle.id and X-Request-Id of one message: stable across attempts."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"healthy-homes:bars:{reason}:{referral_id}"))


def build_message(
    envelope: ReferralEnvelope, service: BarsHousingService, *, reason: str = "new"
) -> JSON:
    """The BaRS ``servicerequest-request`` message Bundle for ``envelope``."""
    transaction = referral_bundle(
        referral_id=envelope.referral_id,
        dataset=envelope.dataset,
        consent=envelope.consent,
        housing_ods=service.ods_code,
        housing_name=service.name,
        authored=envelope.authored,
    )
    entries: list[JSON] = [
        {"fullUrl": e["fullUrl"], "resource": dict(e["resource"])} for e in transaction["entry"]
    ]
    sr_entry = next(e for e in entries if e["resource"]["resourceType"] == "ServiceRequest")
    if reason == "delete":
        sr_entry["resource"]["status"] = "revoked"
    destination: JSON = {"endpoint": str(service.fhir_base_url), "name": service.name}
    if service.ods_code:
        destination["receiver"] = {
            "identifier": {"system": ODS_ORGANISATION, "value": service.ods_code}
        }
    header: JSON = {
        "resourceType": "MessageHeader",
        "id": message_id(envelope.referral_id, reason),
        "eventCoding": {"system": EVENTS, "code": "servicerequest-request"},
        "reason": {"coding": [{"system": REASONS, "code": reason}]},
        "destination": [destination],
        "sender": {"identifier": {"system": ODS_ORGANISATION, "value": envelope.practice_ods}},
        "source": {"name": service.source_name, "endpoint": str(service.reply_endpoint)},
        "focus": [{"reference": sr_entry["fullUrl"]}],
    }
    mid = message_id(envelope.referral_id, reason)
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": mid,
            "type": "message",
            "timestamp": envelope.authored.isoformat(),
            "entry": [
                {"fullUrl": f"urn:uuid:{mid}", "resource": header},
                *entries,
            ],
        }
    )
    return to_json(bundle)


def status_from_response(message: JSON) -> str | None:
    """The Task status a ``servicerequest-response`` carries (None if it carries none)."""
    for entry in message.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Task" and resource.get("status"):
            return str(resource["status"])
    return None


class BarsTransport:
    """Posts BaRS messages with one pooled HTTP client."""

    def __init__(self, service: BarsHousingService, http: httpx.AsyncClient) -> None:
        self.service = service
        self.http = http

    async def _post(self, envelope: ReferralEnvelope, reason: str) -> tuple[int, JSON | None]:
        where: dict[str, Any] = {
            "practice": envelope.practice_ods,
            "referral": envelope.referral_id,
        }
        body = build_message(envelope, self.service, reason=reason)
        headers = {
            "X-Request-Id": message_id(envelope.referral_id, reason),
            "X-Correlation-Id": envelope.correlation_id,
            "Content-Type": FHIR_JSON,
            "Accept": FHIR_JSON,
        }
        try:
            response = await self.http.post("$process-message", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"housing service {self.service.id} unreachable: {type(exc).__name__}",
                retryable=True,
                **where,
            ) from exc
        if response.status_code == 409:
            return 409, None
        if response.status_code >= 400:
            raise DeliveryError(
                f"housing service {self.service.id} answered HTTP {response.status_code}",
                retryable=response.status_code in RETRYABLE_STATUS,
                **where,
            )
        try:
            reply = response.json()
        except ValueError:
            reply = None
        return response.status_code, reply if isinstance(reply, dict) else None

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        """Post the ``new`` message; a 409 (already processed) counts as delivered."""
        _, reply = await self._post(envelope, "new")
        status = (status_from_response(reply) if reply else None) or "received"
        return DeliveryReceipt(remote_ref=message_id(envelope.referral_id, "new"), status=status)

    async def cancel(self, envelope: ReferralEnvelope, reason: str) -> None:
        """Post the ``delete`` message (ServiceRequest revoked); a repeat answers 409."""
        await self._post(envelope, "delete")

    async def poll_status(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> str | None:
        """The latest response message's status, polled from ``bars/responses``."""
        try:
            response = await self.http.get(
                self.service.responses_path,
                params={"correlation_id": envelope.correlation_id},
                headers={"X-Correlation-Id": envelope.correlation_id, "Accept": FHIR_JSON},
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            retryable = not isinstance(exc, httpx.HTTPStatusError) or (
                exc.response.status_code in RETRYABLE_STATUS
            )
            raise DeliveryError(
                f"housing service {self.service.id} responses could not be read",
                retryable=retryable,
                practice=envelope.practice_ods,
                referral=envelope.referral_id,
            ) from exc
        status: str | None = None
        for entry in response.json().get("entry") or []:
            status = status_from_response(entry.get("resource") or {}) or status
        return status

    async def aclose(self) -> None:
        """Close the pooled client."""
        await self.http.aclose()


def make(
    service: HousingServiceConfig, *, clock: Clock, http: httpx.AsyncBaseTransport | None
) -> BarsTransport:
    """The BaRS transport for ``service`` (registry entry ``bars``)."""
    if not isinstance(service, BarsHousingService):
        raise ConfigError(f"housing service {service.id}: bars settings missing")
    base = str(service.fhir_base_url).rstrip("/") + "/"
    client = httpx.AsyncClient(
        base_url=base,
        auth=auth_from_config(service.auth, clock=clock),
        verify=verify_for(tls_from_config(service.auth)),
        transport=http,
        timeout=httpx.Timeout(10.0),
    )
    return BarsTransport(service, client)
