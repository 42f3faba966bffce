"""The mock server's SMART Backend Services token endpoint and bearer enforcement."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from healthy_homes.clock import FixedClock
from healthy_homes.fhir.keys import PrivateKey, generate_private_key, public_jwks, thumbprint_kid
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.auth import CLIENT_ASSERTION_TYPE, MockAuth, mock_auth_from_files
from healthy_homes.mock_server.server import build_server

CLIENT_ID = "healthy-homes-connector"
TOKEN_URL = "http://testserver/auth/token"
SCOPE = "system/Patient.rs system/Condition.rs"
HMAC_SECRET = "a-shared-secret-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def es_key() -> PrivateKey:
    return generate_private_key("ES384")


@pytest.fixture(scope="module")
def rs_key() -> PrivateKey:
    return generate_private_key("RS384")


@pytest.fixture(scope="module")
def stranger_key() -> PrivateKey:
    return generate_private_key("ES384")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def auth(clock: FixedClock, es_key: PrivateKey, rs_key: PrivateKey) -> MockAuth:
    jwks = {"keys": public_jwks(es_key)["keys"] + public_jwks(rs_key)["keys"]}
    return MockAuth({CLIENT_ID: jwks}, clock=clock)


@pytest.fixture
def app(auth: MockAuth, clock: FixedClock) -> FastAPI:
    return create_app(clock=clock, auth=auth)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assertion(
    key: PrivateKey | str | None,
    clock: FixedClock,
    *,
    alg: str = "ES384",
    kid: str | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A client assertion JWT, correct unless told otherwise."""
    now = int(clock.now().timestamp())
    body: dict[str, Any] = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 240,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        body.pop(name)
    if kid is None and not isinstance(key, str | None):
        kid = thumbprint_kid(key)
    headers = {"typ": "JWT", "kid": kid} if kid else {"typ": "JWT"}
    return jwt.encode(body, key, algorithm=alg, headers=headers)  # type: ignore[arg-type]


def form(signed: str, /, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": SCOPE,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": signed,
        **overrides,
    }


async def test_valid_es384_assertion_gets_a_token_that_opens_the_fhir_api(
    http: httpx.AsyncClient, es_key: PrivateKey, clock: FixedClock
) -> None:
    answer = await http.post("/auth/token", data=form(assertion(es_key, clock)))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == SCOPE
    assert answer.headers["Cache-Control"] == "no-store"

    headers = {"Authorization": f"Bearer {body['access_token']}"}
    search = await http.get("/fhir/Patient", headers=headers)
    assert search.status_code == 200
    assert search.json()["resourceType"] == "Bundle"


async def test_valid_rs384_assertion_gets_a_token(
    http: httpx.AsyncClient, rs_key: PrivateKey, clock: FixedClock
) -> None:
    answer = await http.post("/auth/token", data=form(assertion(rs_key, clock, alg="RS384")))
    assert answer.status_code == 200, answer.text


async def test_token_lifetime_is_configurable(es_key: PrivateKey, clock: FixedClock) -> None:
    auth = MockAuth({CLIENT_ID: public_jwks(es_key)}, clock=clock, token_lifetime=60)
    transport = httpx.ASGITransport(app=create_app(clock=clock, auth=auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.post("/auth/token", data=form(assertion(es_key, clock)))
    assert answer.json()["expires_in"] == 60


def _refusals() -> dict[str, Any]:
    """Name -> (builder of the assertion, words the error_description must contain)."""
    return {
        "expired": (lambda k, s, c: assertion(k, c, exp=int(c.now().timestamp()) - 1), "expired"),
        "exp more than 5 min ahead": (
            lambda k, s, c: assertion(k, c, exp=int(c.now().timestamp()) + 301),
            "5 minutes",
        ),
        "wrong audience": (
            lambda k, s, c: assertion(k, c, aud="http://testserver/other/token"),
            "aud must be the token URL",
        ),
        "signed with the wrong key": (
            lambda k, s, c: assertion(s, c, kid=thumbprint_kid(k)),
            "signature does not verify",
        ),
        "key not registered": (lambda k, s, c: assertion(s, c), "no key with kid"),
        "client not registered": (
            lambda k, s, c: assertion(k, c, iss="someone-else", sub="someone-else"),
            "not registered",
        ),
        "iss differs from sub": (lambda k, s, c: assertion(k, c, sub="other"), "iss and sub"),
        "no jti": (lambda k, s, c: assertion(k, c, drop=("jti",)), "'jti' is required"),
        "no exp": (lambda k, s, c: assertion(k, c, drop=("exp",)), "'exp' is required"),
        "alg none": (
            lambda k, s, c: assertion(None, c, alg="none", kid=thumbprint_kid(k)),
            "'none' is not allowed",
        ),
        "HS256": (
            lambda k, s, c: assertion(HMAC_SECRET, c, alg="HS256", kid=thumbprint_kid(k)),
            "'HS256' is not allowed",
        ),
        "not a JWT": (lambda k, s, c: "not.a.jwt", "not a well-formed JWT"),
    }


@pytest.mark.parametrize(("build", "words"), list(_refusals().values()), ids=list(_refusals()))
async def test_bad_assertions_are_refused_as_invalid_client(
    http: httpx.AsyncClient,
    es_key: PrivateKey,
    stranger_key: PrivateKey,
    clock: FixedClock,
    build: Any,
    words: str,
) -> None:
    answer = await http.post("/auth/token", data=form(build(es_key, stranger_key, clock)))
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "invalid_client"
    assert words in body["error_description"]


async def test_replayed_jti_is_refused(
    http: httpx.AsyncClient, es_key: PrivateKey, clock: FixedClock
) -> None:
    once = assertion(es_key, clock)
    assert (await http.post("/auth/token", data=form(once))).status_code == 200
    clock.advance(timedelta(seconds=30))
    again = await http.post("/auth/token", data=form(once))
    assert again.status_code == 401
    assert again.json() == {
        "error": "invalid_client",
        "error_description": "jti has already been used",
    }


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"client_assertion_type": "urn:example:other"}, "invalid_request"),
        ({"client_assertion": ""}, "invalid_request"),
        ({"scope": ""}, "invalid_request"),
    ],
    ids=["wrong grant", "wrong assertion type", "no assertion", "no scope"],
)
async def test_malformed_token_requests_are_400(
    http: httpx.AsyncClient,
    es_key: PrivateKey,
    clock: FixedClock,
    overrides: dict[str, str],
    error: str,
) -> None:
    answer = await http.post("/auth/token", data=form(assertion(es_key, clock), **overrides))
    assert answer.status_code == 400
    assert answer.json()["error"] == error


async def test_token_request_must_be_a_form_without_repeats(
    http: httpx.AsyncClient, es_key: PrivateKey, clock: FixedClock
) -> None:
    as_json = await http.post("/auth/token", json=form(assertion(es_key, clock)))
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"
    body = httpx.QueryParams(form(assertion(es_key, clock))).add("scope", "system/*.rs")
    repeated = await http.post(
        "/auth/token",
        content=str(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 400
    assert "repeated: scope" in repeated.json()["error_description"]


async def test_fhir_api_without_a_token_is_401_with_a_bearer_challenge(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get("/fhir/Patient")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="healthy-homes-mock"'
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"


async def test_fhir_api_with_a_bad_token_is_401_invalid_token(http: httpx.AsyncClient) -> None:
    for header in ("Bearer not-a-token-we-issued", "Basic dXNlcjpwYXNz", "Bearer "):
        answer = await http.get("/fhir/Condition", headers={"Authorization": header})
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert answer.json()["resourceType"] == "OperationOutcome"


async def test_fhir_api_with_an_expired_token_is_401(
    http: httpx.AsyncClient, es_key: PrivateKey, clock: FixedClock
) -> None:
    token = (await http.post("/auth/token", data=form(assertion(es_key, clock)))).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    clock.advance(timedelta(seconds=299))
    assert (await http.get("/fhir/Patient", headers=headers)).status_code == 200
    clock.advance(timedelta(seconds=1))
    answer = await http.get("/fhir/Patient", headers=headers)
    assert answer.status_code == 401
    assert "expired" in answer.headers["WWW-Authenticate"]
    assert answer.json()["issue"][0]["code"] == "expired"


async def test_discovery_and_capability_statement_need_no_token(http: httpx.AsyncClient) -> None:
    smart = await http.get("/fhir/.well-known/smart-configuration")
    assert smart.status_code == 200
    assert smart.json()["token_endpoint"] == TOKEN_URL
    assert "private_key_jwt" in smart.json()["token_endpoint_auth_methods_supported"]
    assert (await http.get("/fhir/metadata")).status_code == 200


async def test_without_auth_the_mock_server_stays_open(clock: FixedClock) -> None:
    transport = httpx.ASGITransport(app=create_app(clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/fhir/Patient")).status_code == 200
        assert (await http.post("/auth/token", data={})).status_code == 404


def test_cli_registrations_load_jwks_files(
    tmp_path: Path, es_key: PrivateKey, clock: FixedClock
) -> None:
    jwks_file = tmp_path / "connector.jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(es_key)))
    auth = mock_auth_from_files([f"{CLIENT_ID}={jwks_file}"], token_lifetime=120, clock=clock)
    issued = auth.grant(form(assertion(es_key, clock)), TOKEN_URL)
    assert (issued.client_id, issued.scope) == (CLIENT_ID, SCOPE)
    assert issued.expires_at == clock.now() + timedelta(seconds=120)
    with pytest.raises(ValueError, match=r"CLIENT_ID=path/to/jwks\.json"):
        mock_auth_from_files([str(jwks_file)])


@pytest.mark.e2e
def test_built_server_with_auth_guards_its_loopback_port(
    es_key: PrivateKey, clock: FixedClock
) -> None:
    auth = MockAuth({CLIENT_ID: public_jwks(es_key)}, clock=clock)
    with build_server(patients=5, clock=clock, auth=auth) as server:
        token_url = f"{server.url}/auth/token"
        signed = assertion(es_key, clock, aud=token_url)
        token = httpx.post(token_url, data=form(signed)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.base_url}/Patient", headers=headers).status_code == 200
        assert httpx.get(f"{server.base_url}/Patient").status_code == 401
