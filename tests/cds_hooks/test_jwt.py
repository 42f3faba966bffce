"""The calling EHR's JWT: what CDS Hooks 2.0 requires, and every way to get it wrong."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from healthy_homes.clock import FixedClock
from healthy_homes.flags.cds_hooks.app import create_app
from healthy_homes.flags.cds_hooks.service import CdsHooksService
from healthy_homes.serving import ServerThread
from tests.cds_hooks.conftest import settings_for
from tests.cds_hooks.ehr import (
    BASE,
    SERVICE,
    SERVICE_URL,
    bearer,
    hook_body,
    jwk,
    jwks,
    token,
    unsigned,
)
from tests.flags.world import NOW, patient

BODY = hook_body("p3", prefetch={"patient": patient("p3", 3)})
NOWHERE = "http://127.0.0.1:9/fhir"  # never called: p3 has no flag


@pytest.fixture
async def cds(db) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """The app over an empty store: every call that gets through answers no cards."""
    service = CdsHooksService(settings_for(NOWHERE, NOWHERE), db, FixedClock(NOW))
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:
        yield client
    await service.aclose()


async def status(cds: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, str]:
    answer = await cds.post(f"/cds-services/{SERVICE}", json=BODY, headers=headers)
    return answer.status_code, answer.json().get("error", "")


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
async def test_rs384_and_es384_are_accepted(cds, alg: str) -> None:
    assert await status(cds, bearer(token(NOW, alg=alg))) == (200, "")


async def test_audience_may_be_a_list_holding_the_service_url(cds) -> None:
    assert (await status(cds, bearer(token(NOW, aud=[SERVICE_URL, "x"]))))[0] == 200


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: unsigned(NOW), "algorithm not accepted"),
        (lambda: unsigned(NOW, alg="HS256", secret=b"shared"), "algorithm not accepted"),
        # The classic confusion: HMAC keyed with the published public key.
        (
            lambda: unsigned(NOW, alg="HS256", secret=json.dumps(jwk()).encode()),
            "algorithm not accepted",
        ),
        (lambda: token(NOW, aud=BASE), "audience"),
        (lambda: token(NOW, aud=f"{BASE}/cds-services"), "audience"),
        (lambda: token(NOW, aud=f"{BASE}/cds-services/healthy-homes-encounter-start"), "audience"),
        (lambda: token(NOW, aud=f"{SERVICE_URL}/"), "audience"),
        (lambda: token(NOW - timedelta(minutes=10)), "expired"),
        (lambda: token(NOW, iss="https://rogue.example.org"), "allowlist"),
        (lambda: token(NOW, name="impostor"), "not published"),  # unknown kid
        (lambda: token(NOW, name="impostor", kid="ehr-es384"), "signature"),  # wrong key
        (lambda: token(NOW, alg="RS384", kid="ehr-es384"), "does not match"),
        (lambda: token(NOW, drop=("jti",)), "jti"),
        (lambda: token(NOW, drop=("exp",)), "exp"),
        (lambda: token(NOW + timedelta(minutes=5)), "future"),
        (lambda: token(NOW, lifetime=timedelta(hours=2)), "too long"),
        (lambda: token(NOW, headers={"jku": "https://rogue.example.org/jwks"}), "jku"),
        (lambda: token(NOW, headers={"typ": "at+jwt"}), "typ"),
        (lambda: "not-a-jwt", "well-formed"),
    ],
)
async def test_refused_tokens(cds, make, why: str) -> None:
    code, error = await status(cds, bearer(make()))
    assert code == 401 and why in error


async def test_missing_or_wrong_scheme(cds) -> None:
    assert (await status(cds, {}))[0] == 401
    assert (await status(cds, {"Authorization": f"Basic {token(NOW)}"}))[0] == 401
    answer = await cds.post(f"/cds-services/{SERVICE}", json=BODY)
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_replayed_jti_is_refused(cds) -> None:
    once = token(NOW, jti="ee22b021-e1b7-4611-ba5b-8eec6a33ac1e")
    assert (await status(cds, bearer(once)))[0] == 200
    assert await status(cds, bearer(once)) == (401, "JWT jti has been used before (replay)")


async def test_tenant_must_match_when_registered(db) -> None:
    settings = settings_for(NOWHERE, NOWHERE, tenant="practice-a")
    service = CdsHooksService(settings, db, FixedClock(NOW))
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as cds:
        assert (await status(cds, bearer(token(NOW, tenant="practice-b"))))[0] == 401
        assert (await status(cds, bearer(token(NOW, tenant="practice-a"))))[0] == 200
    await service.aclose()


class KeyServer:
    """The EHR's JWK Set published over HTTP, counting fetches; the set can be rotated."""

    def __init__(self) -> None:
        self.keys = jwks(("ES384", "ehr"))
        self.fetches = 0
        self.thread = ServerThread(Starlette(routes=[Route("/jwks", self.serve)]))

    async def serve(self, request: Request) -> JSONResponse:
        self.fetches += 1
        return JSONResponse(self.keys)


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    server.thread.start()
    yield server
    server.thread.stop()


async def test_key_sets_by_url_are_cached_and_refreshed(db, key_server) -> None:
    clock = FixedClock(NOW)
    url = f"{key_server.thread.url}/jwks"
    service = CdsHooksService(settings_for(NOWHERE, NOWHERE, jwks_url=url), db, clock)
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as cds:
        for _ in range(3):
            assert (await status(cds, bearer(token(clock.now()))))[0] == 200
        assert key_server.fetches == 1  # cached
        assert (await status(cds, bearer(token(clock.now(), headers={"jku": url}))))[0] == 200

        # Rotation: a new kid is fetched, but an unknown one not more than every 30 s.
        key_server.keys = jwks(("ES384", "ehr"), ("ES384", "next"))
        assert (await status(cds, bearer(token(clock.now(), name="next"))))[0] == 401
        clock.advance(timedelta(seconds=31))
        assert (await status(cds, bearer(token(clock.now(), name="next"))))[0] == 200
        assert key_server.fetches == 2

        clock.advance(timedelta(minutes=5))  # the cache ages out
        assert (await status(cds, bearer(token(clock.now()))))[0] == 200
        assert key_server.fetches == 3
    await service.aclose()
