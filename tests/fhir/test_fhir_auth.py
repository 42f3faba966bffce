"""SMART Backend Services, static bearer and mTLS on the client side.

The authorisation server is the real mock server (healthy_homes.mock_server), in
process through httpx.ASGITransport and once over a loopback port.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from pydantic import SecretStr

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import AuthConfig
from healthy_homes.errors import ConfigError, FhirAuthError, FhirStatusError
from healthy_homes.fhir.auth import (
    BearerAuth,
    SmartBackendAuth,
    auth_from_config,
    mtls_context,
    tls_from_config,
)
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.keys import (
    PrivateKey,
    generate_private_key,
    public_jwks,
    thumbprint_kid,
    write_private_key,
)
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.auth import MockAuth
from healthy_homes.serving import ServerThread
from tests.fhir.fhir_fakes import SleepRecorder, bundle

CLIENT_ID = "healthy-homes-connector"
SCOPE = "system/Patient.rs system/Condition.rs"
SERVER = "http://testserver"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return generate_private_key("ES384")


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return generate_private_key("RS384")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def mock_auth(key: PrivateKey, rsa_key: PrivateKey, clock: FixedClock) -> MockAuth:
    jwks = {"keys": public_jwks(key)["keys"] + public_jwks(rsa_key)["keys"]}
    return MockAuth({CLIENT_ID: jwks}, clock=clock)


@pytest.fixture
def app(mock_auth: MockAuth, clock: FixedClock) -> FastAPI:
    return create_app(clock=clock, auth=mock_auth)


@pytest.fixture
async def token_http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield http


SmartFactory = Callable[..., SmartBackendAuth]


@pytest.fixture
def smart(key: PrivateKey, clock: FixedClock, token_http: httpx.AsyncClient) -> SmartFactory:
    def make(private_key: PrivateKey = key, **kw: object) -> SmartBackendAuth:
        options: dict[str, object] = {
            "client_id": CLIENT_ID,
            "token_url": f"{SERVER}/auth/token",
            "private_key": private_key,
            "scope": SCOPE,
            "clock": clock,
            "http": token_http,
        }
        options.update(kw)
        return SmartBackendAuth(**options)  # type: ignore[arg-type]

    return make


def fhir(app: FastAPI, auth: httpx.Auth, **kw: object) -> FhirClient:
    return FhirClient(
        f"{SERVER}/fhir",
        practice="A12345",
        auth=auth,
        transport=httpx.ASGITransport(app=app),
        sleep=SleepRecorder(),
        **kw,  # type: ignore[arg-type]
    )


async def test_token_is_reused_until_shortly_before_expiry_then_refreshed(
    app: FastAPI, smart: SmartFactory, mock_auth: MockAuth, clock: FixedClock
) -> None:
    auth = smart()
    async with fhir(app, auth) as client:
        for _ in range(3):
            await client.request_json("GET", "Patient", expect="Bundle")
        assert (auth.fetches, mock_auth.tokens_issued) == (1, 1)

        clock.advance(timedelta(seconds=269))  # expires_in 300, refreshed 30 s early
        await client.request_json("GET", "Patient", expect="Bundle")
        assert auth.fetches == 1

        clock.advance(timedelta(seconds=1))
        await client.request_json("GET", "Condition", expect="Bundle")
        assert (auth.fetches, mock_auth.tokens_issued) == (2, 2)


async def test_rs384_key_works_too(app: FastAPI, smart: SmartFactory, rsa_key: PrivateKey) -> None:
    auth = smart(rsa_key)
    assert auth.algorithm == "RS384"
    async with fhir(app, auth) as client:
        await client.request_json("GET", "Patient", expect="Bundle")


async def test_concurrent_calls_share_one_token_fetch(
    app: FastAPI, smart: SmartFactory, mock_auth: MockAuth
) -> None:
    auth = smart()
    async with fhir(app, auth) as client:
        await asyncio.gather(*(client.request("GET", "Patient") for _ in range(10)))
    assert (auth.fetches, mock_auth.tokens_issued) == (1, 1)


async def test_a_401_drops_the_cached_token_and_retries_once_with_a_fresh_one(
    app: FastAPI, smart: SmartFactory, mock_auth: MockAuth
) -> None:
    auth = smart()
    async with fhir(app, auth) as client:
        await client.request("GET", "Patient")
        mock_auth.revoke_tokens()  # the server restarted and forgot our token
        await client.request("GET", "Patient")
    assert auth.fetches == 2


async def test_a_second_401_is_not_retried_again(smart: SmartFactory) -> None:
    auth = smart()
    seen: list[str] = []

    def refusing_fhir_server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401, json={"resourceType": "OperationOutcome", "issue": []})

    client = FhirClient(
        f"{SERVER}/fhir", auth=auth, transport=httpx.MockTransport(refusing_fhir_server)
    )
    async with client:
        with pytest.raises(FhirStatusError) as caught:
            await client.request("GET", "Patient")
    assert caught.value.status_code == 401
    assert len(seen) == 2
    assert seen[0] != seen[1]  # the retry carried a fresh token
    assert auth.fetches == 2


async def test_unregistered_key_is_a_clear_auth_error_without_the_assertion(
    app: FastAPI, smart: SmartFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = smart(generate_private_key("ES384"))
    async with fhir(app, auth) as client:
        with pytest.raises(FhirAuthError) as caught:
            await client.request("GET", "Patient")
    message = str(caught.value)
    assert f"refused client {CLIENT_ID}" in message
    assert f"invalid_client: no key with kid '{auth.key_id}' is registered" in message
    assert caught.value.url == f"{SERVER}/auth/token"
    assert "eyJ" not in message  # no JWT (assertion or token) in the error
    assert "eyJ" not in caplog.text
    assert not caught.value.retryable


async def test_unregistered_client_is_a_clear_auth_error(app: FastAPI, smart: SmartFactory) -> None:
    async with fhir(app, smart(client_id="not-registered")) as client:
        with pytest.raises(FhirAuthError, match="invalid_client: client 'not-registered'"):
            await client.request("GET", "Patient")


async def test_no_token_or_assertion_reaches_the_logs(
    app: FastAPI, smart: SmartFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = smart()
    async with fhir(app, auth) as client:
        await client.request("GET", "Patient")
    token = await auth.token()
    assert token.value not in caplog.text
    assert token.value not in repr(token)
    assert "eyJ" not in caplog.text


async def test_assertion_has_the_smart_header_and_claims(
    smart: SmartFactory, key: PrivateKey, clock: FixedClock
) -> None:
    auth = smart()
    first, second = auth.client_assertion(), auth.client_assertion()
    header = jwt.get_unverified_header(first)
    assert header == {"alg": "ES384", "kid": thumbprint_kid(key), "typ": "JWT"}
    claims = jwt.decode(
        first,
        key.public_key(),
        algorithms=["ES384"],
        audience=f"{SERVER}/auth/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    now = int(clock.now().timestamp())
    assert claims["iat"] == now
    assert now < claims["exp"] <= now + 300
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]


async def test_token_endpoint_outage_is_retryable(clock: FixedClock, key: PrivateKey) -> None:
    answers = [
        httpx.Response(503),
        httpx.Response(200, json={"access_token": "t1", "token_type": "Bearer", "expires_in": 300}),
    ]

    def token_server(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    def fhir_server(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t1"
        return httpx.Response(200, json=bundle())

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_server)) as token_http:
        auth = SmartBackendAuth(
            client_id=CLIENT_ID,
            token_url="https://auth.example.org/token",
            private_key=key,
            scope=SCOPE,
            clock=clock,
            http=token_http,
        )
        sleeps = SleepRecorder()
        client = FhirClient(
            "https://gp.example.org/fhir",
            auth=auth,
            transport=httpx.MockTransport(fhir_server),
            sleep=sleeps,
            policy=RetryPolicy(max_attempts=3),
        )
        async with client:
            await client.request("GET", "Patient")
    assert len(sleeps.calls) == 1
    assert auth.fetches == 2  # the failed token request, then the good one


@pytest.mark.e2e
async def test_smart_auth_over_a_real_loopback_port(
    mock_auth: MockAuth, clock: FixedClock, key: PrivateKey, tmp_path: Path
) -> None:
    key_file = tmp_path / "connector.pem"
    write_private_key(key_file, key)
    with ServerThread(create_app(clock=clock, auth=mock_auth)) as url:
        config = AuthConfig(
            kind="smart",
            client_id=CLIENT_ID,
            token_url=f"{url}/auth/token",
            private_key_file=str(key_file),
            scope=SCOPE,
        )
        auth = auth_from_config(config, clock=clock)
        assert isinstance(auth, SmartBackendAuth)
        async with FhirClient(f"{url}/fhir", auth=auth, clock=clock) as client:
            await client.request_json("GET", "Patient", expect="Bundle")
            await client.request_json("GET", "Condition", expect="Bundle")
            async with httpx.AsyncClient() as anonymous:
                assert (await anonymous.get(f"{url}/fhir/Patient")).status_code == 401
    assert (auth.fetches, mock_auth.tokens_issued) == (1, 1)


async def test_static_bearer_token_is_sent() -> None:
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json=bundle())

    config = AuthConfig(kind="bearer", token=SecretStr("pilot-token"))
    auth = auth_from_config(config)
    assert isinstance(auth, BearerAuth)
    async with FhirClient(
        "https://gp.example.org/fhir", auth=auth, transport=httpx.MockTransport(server)
    ) as client:
        await client.request("GET", "Patient")
    assert seen == ["Bearer pilot-token"]


async def test_wrong_static_bearer_is_refused_by_the_mock_server(app: FastAPI) -> None:
    async with fhir(app, BearerAuth("made-up")) as client:
        with pytest.raises(FhirStatusError) as caught:
            await client.request("GET", "Patient")
    assert caught.value.status_code == 401


def test_auth_from_config_builds_smart_with_the_configured_kid(
    tmp_path: Path, key: PrivateKey
) -> None:
    key_file = tmp_path / "k.pem"
    write_private_key(key_file, key)
    config = AuthConfig(
        kind="smart",
        client_id=CLIENT_ID,
        token_url="https://auth.example.org/token",
        private_key_file=str(key_file),
        key_id="key-2026",
    )
    auth = auth_from_config(config)
    assert isinstance(auth, SmartBackendAuth)
    assert (auth.key_id, auth.algorithm, auth.token_url) == (
        "key-2026",
        "ES384",
        "https://auth.example.org/token",
    )
    assert auth_from_config(AuthConfig()) is None
    assert tls_from_config(AuthConfig()) is True


def _self_signed(folder: Path) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    private = generate_private_key("ES384")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "healthy-homes-connector")])
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(private, hashes.SHA384())
    )
    cert_file, key_file = folder / "client.crt", folder / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private_key(key_file, private)
    return str(cert_file), str(key_file)


async def test_mtls_context_presents_our_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    config = AuthConfig(kind="mtls", client_cert_file=cert_file, client_key_file=key_file)
    context = tls_from_config(config)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert auth_from_config(config) is None
    async with FhirClient("https://gp.example.org/fhir", verify=context) as client:
        assert client.base_url == "https://gp.example.org/fhir/"


def test_mtls_with_a_mismatched_key_is_a_config_error(tmp_path: Path) -> None:
    cert_file, _ = _self_signed(tmp_path / "one")
    _, other_key = _self_signed(tmp_path / "two")
    with pytest.raises(ConfigError, match="cannot load client certificate"):
        mtls_context(cert_file, other_key)
