"""The transport contract: how a referral reaches a housing service.

Each housing service names its transport in configuration (``transport = "fhir" |
"bars" | "hl7v2" | "email"``); :func:`transport_for` builds the matching
:class:`Transport`. The delivery worker owns retries, consent re-checks and state;
a transport only moves one referral over one wire, idempotently by ``referral_id``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import httpx

from healthy_homes.clock import Clock
from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.errors import ConfigError
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.store.models import ConsentRecord


@dataclass(frozen=True)
class ReferralEnvelope:
    """Everything a transport needs to deliver one referral (already consent-checked)."""

    referral_id: str
    practice_ods: str
    dataset: MinimumDataset
    consent: ConsentRecord
    service: HousingServiceConfig
    authored: datetime
    correlation_id: str


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the receiver told us: its reference for the referral and a first status.

    ``remote_ref`` is transport-specific (``Task/123`` for FHIR, the ServiceRequest
    reference for BaRS, the MSH-10 control id for HL7 v2, the Message-ID for email);
    ``status`` uses FHIR Task status words (``requested``, ``received``, ``accepted``...)
    or None when the transport cannot tell.
    """

    remote_ref: str | None
    status: str | None


class Transport(Protocol):
    """One housing service's wire."""

    async def deliver(self, envelope: ReferralEnvelope) -> DeliveryReceipt:
        """Send the referral; idempotent by ``referral_id``.

        Raises :class:`~healthy_homes.errors.DeliveryError` with ``retryable`` set.
        """
        ...

    async def cancel(self, envelope: ReferralEnvelope, reason: str) -> None:
        """Ask the receiver to stop (consent withdrawn); safe to repeat."""
        ...

    async def poll_status(self, envelope: ReferralEnvelope, receipt: DeliveryReceipt) -> str | None:
        """The receiver's current status (Task status words), or None if unknown."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


#: One referral's result from a combined send: its receipt, or the error that stopped it.
Outcome = DeliveryReceipt | Exception


@runtime_checkable
class CombiningTransport(Protocol):
    """A wire that can carry several referrals in one request (the FHIR transaction)."""

    #: Referrals per request now (1: the worker sends one at a time).
    per_request: int

    async def deliver_many(self, envelopes: list[ReferralEnvelope]) -> list[Outcome]:
        """Send these referrals; each one's outcome, in order. Idempotent by ``referral_id``."""
        ...


#: transport name -> module under this package exposing ``make(service, *, clock, http)``.
_MODULES = {
    "fhir": "fhir_rest",
    "bars": "bars",
    "hl7v2": "hl7v2",
    "email": "email",
}


def transport_for(
    service: HousingServiceConfig,
    *,
    clock: Clock,
    http: httpx.AsyncBaseTransport | None = None,
) -> Transport:
    """The transport configured for a housing service (registry keyed by ``service.transport``).

    ``http`` lets tests and in-process deployments route HTTP transports through
    an ASGI app instead of the network; other transports ignore it.
    """
    name = _MODULES.get(service.transport)
    if name is None:
        raise ConfigError(f"housing service {service.id}: unknown transport '{service.transport}'")
    try:
        module = importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"housing service {service.id}: transport '{service.transport}' is not available"
        ) from exc
    transport: Transport = module.make(service, clock=clock, http=http)
    return transport
