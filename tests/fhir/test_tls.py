"""One verifying TLS context shared by every client on the default trust store."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from healthy_homes.errors import FhirTransportError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.fhir.tls import default_context, verify_for
from tests.fhir.test_fhir_auth import _self_signed


def _context_of(client: FhirClient) -> Any:
    # httpx keeps the context on its connection pool; no public accessor exists.
    return client._http._transport._pool._ssl_context  # type: ignore[attr-defined]


async def test_clients_on_the_default_trust_store_share_one_verifying_context() -> None:
    async with (
        FhirClient("https://gp-one.example.org/fhir") as one,
        FhirClient("https://gp-two.example.org/fhir") as two,
    ):
        assert _context_of(one) is _context_of(two) is default_context()
    assert default_context().verify_mode is ssl.CERT_REQUIRED
    assert default_context().check_hostname


async def test_a_client_given_its_own_context_keeps_it() -> None:
    own = ssl.create_default_context()
    async with FhirClient("https://gp.example.org/fhir", verify=own) as client:
        assert _context_of(client) is own
    assert verify_for(own) is own
    assert verify_for(False) is False
    assert verify_for(True) is default_context()


async def test_the_shared_context_still_refuses_a_server_it_does_not_trust(
    tmp_path: Path,
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert_file, key_file)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    try:
        once = RetryPolicy(max_attempts=1)
        async with FhirClient(f"https://127.0.0.1:{port}/fhir", policy=once) as client:
            with pytest.raises(FhirTransportError, match="failed to connect"):
                await client.request("GET", "metadata")
    finally:
        server.close()
        await server.wait_closed()
