"""FHIR REST transport: the SDOH Clinical Care transaction (Patient, Consent, ServiceRequest, Task).

Every entry is a conditional create on our identifiers (``referrals/bundle.py``), so
delivering twice creates nothing new. The closed loop reads the remote Task, found by
our referral identifier, so it works even when the first answer was lost.

A service may take several referrals in one transaction (``referrals_per_request``):
each referral's four entries keep their own conditional creates, so a combined
transaction de-duplicates exactly as single ones do. A transaction is all or nothing,
so when a combined one is refused outright (a 4xx) each referral is sent again on its
own: the one at fault fails alone and the rest go through. A receiver that refuses
combined transactions but takes each referral alone is sent one at a time from then on.
"""

from __future__ import annotations

import asyncio
import logging

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
from healthy_homes.referrals.transports.base import DeliveryReceipt, Outcome, ReferralEnvelope

log = logging.getLogger(__name__)
#: The delivery worker owns backoff across attempts; one quick retry here covers a blip.
TRANSPORT_POLICY = RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_cap=1.0)


def task_reference(response: JSON) -> str | None:
    """``Task/{id}`` from a transaction-response Bundle, if it holds one."""
    return _task_in(response.get("entry") or [])


def _task_in(entries: list[JSON]) -> str | None:
    for entry in entries:
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


def distinct_patients(envelopes: list[ReferralEnvelope]) -> list[list[ReferralEnvelope]]:
    """Split into groups where no patient appears twice, keeping the order within each.

    Two conditional creates of the same Patient in one transaction would both find
    nothing and both create: a patient's second referral goes in a later group.
    """
    groups: list[list[ReferralEnvelope]] = []
    seen: list[set[str]] = []
    for envelope in envelopes:
        nhs = envelope.dataset.nhs_number
        for group, numbers in zip(groups, seen, strict=True):
            if nhs not in numbers:
                group.append(envelope)
                numbers.add(nhs)
                break
        else:
            groups.append([envelope])
            seen.append({nhs})
    return groups


class FhirRestTransport:
    """Delivers to a housing service's FHIR endpoint with one pooled client."""

    def __init__(self, client: FhirClient, *, per_request: int = 1) -> None:
        self.client = client
        #: Referrals per transaction; drops to 1 if the receiver refuses combined ones.
        self.per_request = per_request

    def _error(self, exc: FhirError, envelope: ReferralEnvelope, what: str) -> DeliveryError:
        return DeliveryError(
            f"housing service {envelope.service.id} {what}: {exc.message}",
            retryable=exc.retryable,
            practice=envelope.practice_ods,
            referral=envelope.referral_id,
        )

    def _bundle(self, envelope: ReferralEnvelope) -> JSON:
        return referral_bundle(
            referral_id=envelope.referral_id,
            dataset=envelope.dataset,
            consent=envelope.consent,
            housing_ods=envelope.service.ods_code,
            housing_name=envelope.service.name,
            authored=envelope.authored,
        )

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        """POST the transaction; a repeat matches our identifiers and creates nothing."""
        try:
            response = await self.client.transaction(
                self._bundle(envelope), headers={"X-Correlation-Id": envelope.correlation_id}
            )
        except FhirError as exc:
            raise self._error(exc, envelope, "did not take the referral") from exc
        return DeliveryReceipt(remote_ref=task_reference(response), status="requested")

    async def _alone(self, envelope: ReferralEnvelope) -> Outcome:
        try:
            return await self.deliver(envelope)
        except Exception as exc:  # the worker settles each referral by its own outcome
            return exc

    async def deliver_many(self, envelopes: list[ReferralEnvelope]) -> list[Outcome]:
        """Send several referrals, combined per ``per_request``; each one's outcome, in order."""
        if self.per_request <= 1 or len(envelopes) <= 1:
            return list(await asyncio.gather(*(self._alone(e) for e in envelopes)))
        outcomes: dict[str, Outcome] = {}
        for group in distinct_patients(envelopes):
            for start in range(0, len(group), self.per_request):
                outcomes.update(await self._combined(group[start : start + self.per_request]))
        return [outcomes[e.referral_id] for e in envelopes]

    async def _combined(self, group: list[ReferralEnvelope]) -> dict[str, Outcome]:
        if len(group) == 1:
            return {group[0].referral_id: await self._alone(group[0])}
        bundles = [self._bundle(e) for e in group]
        combined = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [entry for bundle in bundles for entry in bundle["entry"]],
        }
        ids = ",".join(e.correlation_id for e in group)
        try:
            response = await self.client.transaction(combined, headers={"X-Correlation-Id": ids})
        except FhirError as exc:
            if (
                exc.retryable
            ):  # temporary: each waits its own retry (a resend creates nothing twice)
                return {
                    e.referral_id: self._error(exc, e, "did not take the referral") for e in group
                }
            return await self._each_alone(group, exc)
        answered = response.get("entry") or []
        sizes = [len(bundle["entry"]) for bundle in bundles]
        if len(answered) != sum(sizes):
            answered = []  # not one answer per entry: the closed loop finds Tasks by identifier
        outcomes: dict[str, Outcome] = {}
        start = 0
        for envelope, size in zip(group, sizes, strict=True):
            task = _task_in(answered[start : start + size])
            outcomes[envelope.referral_id] = DeliveryReceipt(remote_ref=task, status="requested")
            start += size
        return outcomes

    async def _each_alone(
        self, group: list[ReferralEnvelope], refused: FhirError
    ) -> dict[str, Outcome]:
        """A combined transaction was refused: each referral again on its own."""
        results = await asyncio.gather(*(self._alone(e) for e in group))
        if all(isinstance(r, DeliveryReceipt) for r in results):
            # Every one was fine alone: it is the combining this receiver refuses.
            log.warning(
                "housing service %s refused %d referrals in one transaction (HTTP %s) but "
                "took each alone; sending one per transaction from now on",
                group[0].service.id,
                len(group),
                getattr(refused, "status_code", "error"),
            )
            self.per_request = 1
        return {e.referral_id: r for e, r in zip(group, results, strict=True)}

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
    return FhirRestTransport(client, per_request=getattr(service, "referrals_per_request", 1))
