"""FHIR REST transport: the SDOH Clinical Care transaction (Patient, Consent, ServiceRequest, Task).

Every entry is a conditional create on our identifiers (``referrals/bundle.py``), so
delivering twice creates nothing new. The closed loop reads the remote Task, found by
our referral identifier, so it works even when the first answer was lost.
"""

from __future__ import annotations

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.errors import ConfigError, DeliveryError, FhirError
from healthy_homes.fhir.auth import auth_from_config, tls_from_config
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.flags.fhir_sync import find_by_identifier, versioned_update
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.transports.base import DeliveryReceipt, ReferralEnvelope

#: The delivery worker owns backoff across attempts; one quick retry here covers a blip.
TRANSPORT_POLICY = RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_cap=1.0)


def task_reference(response: JSON) -> str | None:
    """``Task/{id}`` from a transaction-response Bundle, if it holds one."""
    for entry in response.get("entry") or []:
        location = (entry.get("response") or {}).get("location") or ""
        if location.startswith("Task/") or "/Task/" in location:
            parts = location.split("/_history")[0].split("/")
            return f"Task/{parts[-1]}"
    return None


WITHDRAWN = "consent withdrawn"
#: Task states a sender may still cancel (https://hl7.org/fhir/R4/task.html#statemachine).
CANCELLABLE_TASK = frozenset(
    {"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"}
)
REVOCABLE_REQUEST = frozenset({"draft", "active", "on-hold"})


def _cancelled_task(current: JSON) -> JSON | None:
    if current.get("status") not in CANCELLABLE_TASK:
        return None
    return {**current, "status": "cancelled", "statusReason": {"text": WITHDRAWN}}


def _revoked_request(current: JSON) -> JSON | None:
    if current.get("status") not in REVOCABLE_REQUEST:
        return None
    return {**current, "status": "revoked"}


async def recall(housing: FhirClient, referral_id: str) -> bool:
    """Ask the housing service to stop: cancel its Task, revoke the ServiceRequest.

    Returns whether it holds the referral at all. Safe to repeat (If-Match updates
    that change nothing once done).
    """
    found = False
    for resource_type, change in (("Task", _cancelled_task), ("ServiceRequest", _revoked_request)):
        current = await find_by_identifier(housing, resource_type, HH_REFERRAL_ID, referral_id)
        if current is not None:
            found = True
            await versioned_update(housing, resource_type, str(current["id"]), change)
    return found


class FhirRestTransport:
    """Delivers to a housing service's FHIR endpoint with one pooled client."""

    def __init__(self, client: FhirClient) -> None:
        self.client = client

    def _error(self, exc: FhirError, envelope: ReferralEnvelope, what: str) -> DeliveryError:
        return DeliveryError(
            f"housing service {envelope.service.id} {what}: {exc.message}",
            retryable=exc.retryable,
            practice=envelope.practice_ods,
            referral=envelope.referral_id,
        )

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        """POST the transaction; a repeat matches our identifiers and creates nothing."""
        bundle = referral_bundle(
            referral_id=envelope.referral_id,
            dataset=envelope.dataset,
            consent=envelope.consent,
            housing_ods=envelope.service.ods_code,
            housing_name=envelope.service.name,
            authored=envelope.authored,
        )
        try:
            response = await self.client.transaction(
                bundle, headers={"X-Correlation-Id": envelope.correlation_id}
            )
        except FhirError as exc:
            raise self._error(exc, envelope, "did not take the referral") from exc
        return DeliveryReceipt(remote_ref=task_reference(response), status="requested")

    async def cancel(self, envelope: ReferralEnvelope, reason: str) -> None:
        """Task cancelled and ServiceRequest revoked, by our identifier; safe to repeat."""
        try:
            await recall(self.client, envelope.referral_id)
        except FhirError as exc:
            raise self._error(exc, envelope, "could not be asked to cancel") from exc

    async def read_task(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> JSON | None:
        """The remote Task as it stands (read by id, else found by our identifier)."""
        try:
            if receipt.remote_ref and receipt.remote_ref.startswith("Task/"):
                return await self.client.read("Task", receipt.remote_ref.split("/", 1)[1])
            return await find_by_identifier(
                self.client, "Task", HH_REFERRAL_ID, envelope.referral_id
            )
        except FhirError as exc:
            raise self._error(exc, envelope, "status could not be read") from exc

    async def poll_status(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> str | None:
        """The remote Task's status (read by id, else found by our identifier)."""
        task = await self.read_task(envelope, receipt)
        status = task.get("status") if task else None
        return str(status) if status else None

    async def aclose(self) -> None:
        """Close the pooled client."""
        await self.client.aclose()


def make(
    service: HousingServiceConfig, *, clock: Clock, http: httpx.AsyncBaseTransport | None
) -> FhirRestTransport:
    """The FHIR REST transport for ``service`` (registry entry ``fhir``)."""
    if service.fhir_base_url is None:
        raise ConfigError(f"housing service {service.id}: the fhir transport needs fhir_base_url")
    client = FhirClient(
        str(service.fhir_base_url),
        auth=auth_from_config(service.auth, clock=clock),
        verify=tls_from_config(service.auth),
        transport=http,
        clock=clock,
        policy=TRANSPORT_POLICY,
    )
    return FhirRestTransport(client)
