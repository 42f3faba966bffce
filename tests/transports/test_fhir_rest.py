"""FHIR REST transport: idempotent delivery, Task polling and cancel on a real mock server."""

from __future__ import annotations

import httpx

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FhirHousingService
from healthy_homes.mock_server.pytest_plugin import MockFhirFactory
from healthy_homes.referrals.transports.base import transport_for
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport
from tests.transports.envelopes import NOW, envelope


def _count(base: str, resource_type: str) -> int:
    bundle = httpx.get(f"{base}/{resource_type}", params={"_summary": "count"}).json()
    return int(bundle.get("total", len(bundle.get("entry") or [])))


def _move(base: str, task_id: str, status: str) -> None:
    admin = base.rsplit("/fhir", 1)[0]
    httpx.post(f"{admin}/admin/tasks/{task_id}/status", json={"status": status}).raise_for_status()


async def test_second_delivery_creates_nothing_new(mock_fhir_factory: MockFhirFactory) -> None:
    housing = mock_fhir_factory(patients=0, mode="housing")
    service = FhirHousingService(id="h", name="Housing", fhir_base_url=housing.base_url)
    transport = transport_for(service, clock=FixedClock(NOW))
    assert isinstance(transport, FhirRestTransport)
    env = envelope(service)
    try:
        first = await transport.deliver(env)
        counts = {t: _count(housing.base_url, t) for t in ("Patient", "ServiceRequest", "Task")}
        second = await transport.deliver(env)
        assert counts == {"Patient": 1, "ServiceRequest": 1, "Task": 1}
        assert {t: _count(housing.base_url, t) for t in counts} == counts
        assert first.remote_ref is not None and first.remote_ref.startswith("Task/")
        assert second.remote_ref == first.remote_ref
        assert await transport.poll_status(env, first) == "requested"

        task_id = first.remote_ref.split("/")[1]
        _move(housing.base_url, task_id, "accepted")
        assert await transport.poll_status(env, first) == "accepted"
        # Without the receipt's reference (answer lost), the Task is found by our identifier.
        assert await transport.poll_status(env, first.__class__(None, None)) == "accepted"

        await transport.cancel(env, "consent withdrawn")
        await transport.cancel(env, "consent withdrawn")
        assert await transport.poll_status(env, first) == "cancelled"
    finally:
        await transport.aclose()
