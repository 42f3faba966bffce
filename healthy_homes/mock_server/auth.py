"""The mock server's SMART Backend Services authorisation server and bearer check.

Token endpoint per https://hl7.org/fhir/smart-app-launch/backend-services.html:
clients registered with a JWKS authenticate with an RS384/ES384-signed JWT
(RFC 7523 ``private_key_jwt``) and get an opaque access token. Any problem with
the client's assertion is ``invalid_client`` (401), as SMART requires; a malformed
request is ``invalid_request`` (400), per RFC 6749 §5.2.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import jwt
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from healthy_homes.clock import Clock, SystemClock

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALLOWED_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_AHEAD = timedelta(minutes=5)
TOKEN_PATH = "/auth/token"  # noqa: S105 (a URL path, not a secret)
FHIR_PREFIX = "/fhir"
# Discovery and the capability statement stay readable without a token.
PUBLIC_FHIR_PATHS = ("/metadata", "/.well-known/smart-configuration")
REALM = "healthy-homes-mock"


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        """The JSON answer, never cached."""
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )


def _bad_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


@dataclass(frozen=True)
class IssuedToken:
    """An opaque access token the mock server handed out."""

    access_token: str = field(repr=False)
    client_id: str
    scope: str
    expires_at: datetime


class MockAuth:
    """Registered clients, issued tokens and seen ``jti`` values of one mock server."""

    def __init__(
        self,
        clients: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        token_lifetime: int = 300,
        clock: Clock | None = None,
        token_url: str | None = None,
        fhir_prefix: str = FHIR_PREFIX,
    ) -> None:
        self.token_lifetime = token_lifetime
        self.clock = clock or SystemClock()
        #: The exact ``aud`` assertions must carry; by default the URL they were POSTed to.
        self.token_url = token_url
        self.fhir_prefix = fhir_prefix.rstrip("/")
        self._clients: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._seen_jti: dict[tuple[str, str], float] = {}
        # The app may run on a server thread while a test registers clients.
        self._lock = threading.Lock()
        self.tokens_issued = 0
        for client_id, jwks in (clients or {}).items():
            self.register_client(client_id, jwks)

    def register_client(self, client_id: str, jwks: Mapping[str, Any]) -> None:
        """Register (or replace) a client and the public keys it signs with."""
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise ValueError("a JWKS is an object with a 'keys' list")
        with self._lock:
            self._clients[client_id] = {"keys": [dict(k) for k in keys]}

    def revoke_tokens(self) -> None:
        """Forget every issued token, as a restarted authorisation server would."""
        with self._lock:
            self._tokens.clear()

    def install(self, app: FastAPI) -> None:
        """Serve the token endpoint; ``create_app(auth=...)`` adds :meth:`middleware` too."""
        app.include_router(self.router())

    def middleware(self) -> Middleware:
        """The bearer check on the FHIR API."""
        return Middleware(RequireBearer, auth=self)

    def router(self) -> APIRouter:
        """The token endpoint and SMART discovery document."""
        router = APIRouter(tags=["auth"])

        @router.post(TOKEN_PATH, include_in_schema=True)
        async def token(request: Request) -> JSONResponse:
            try:
                issued = self.grant(await _form(request), self.token_url or _plain_url(request))
            except OAuthError as error:
                return error.response()
            return JSONResponse(
                {
                    "access_token": issued.access_token,
                    "token_type": "bearer",
                    "expires_in": self.token_lifetime,
                    "scope": issued.scope,
                },
                headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
            )

        @router.get(f"{self.fhir_prefix}/.well-known/smart-configuration")
        async def smart_configuration(request: Request) -> JSONResponse:
            base = str(request.base_url).rstrip("/")
            return JSONResponse(
                {
                    "token_endpoint": self.token_url or base + TOKEN_PATH,
                    "grant_types_supported": ["client_credentials"],
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                    "token_endpoint_auth_signing_alg_values_supported": list(ALLOWED_ALGORITHMS),
                    "capabilities": ["client-confidential-asymmetric"],
                }
            )

        return router

    def grant(self, form: Mapping[str, str], audience: str) -> IssuedToken:
        """Check a token request and issue an access token, or raise OAuthError."""
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise OAuthError(
                "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
            )
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_request", "client_assertion is missing")
        scope = form.get("scope", "").strip()
        if not scope:
            raise OAuthError("invalid_request", "scope is missing")
        client_id = self.authenticate(assertion, audience)
        now = self.clock.now()
        issued = IssuedToken(
            access_token=secrets.token_urlsafe(32),
            client_id=client_id,
            scope=scope,
            expires_at=now + timedelta(seconds=self.token_lifetime),
        )
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[issued.access_token] = issued
            self.tokens_issued += 1
        return issued

    def authenticate(self, assertion: str, audience: str) -> str:
        """Verify a client assertion JWT; return the client id or raise invalid_client."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _bad_client("client_assertion is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            # Never 'none' and never HMAC: a shared secret is not a registered public key.
            raise _bad_client(f"alg {alg!r} is not allowed; use RS384 or ES384")
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or unverified.get("sub") != client_id:
            raise _bad_client("iss and sub must both be the client_id")
        with self._lock:
            registered = self._clients.get(client_id)
        if registered is None:
            raise _bad_client(f"client {client_id!r} is not registered")
        key = _find_key(registered, header.get("kid"), alg, client_id)
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=client_id,
                # Time is checked below on our own (injectable) clock, not PyJWT's.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                },
            )
        except jwt.InvalidAudienceError:
            raise _bad_client(f"aud must be the token URL {audience}") from None
        except jwt.InvalidSignatureError:
            raise _bad_client("signature does not verify with the registered key") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _bad_client(f"claim {exc.claim!r} is required") from None
        except jwt.PyJWTError as exc:
            raise _bad_client(f"assertion rejected: {type(exc).__name__}") from None
        self._check_times(claims)
        self._remember_jti(client_id, claims)
        return client_id

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.clock.now().timestamp()
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _bad_client("exp must be a number")
        if exp <= now:
            raise _bad_client("assertion has expired")
        if exp > now + MAX_ASSERTION_AHEAD.total_seconds():
            raise _bad_client("exp must be no more than 5 minutes ahead")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now:
            raise _bad_client("assertion is not valid yet (nbf)")

    def _remember_jti(self, client_id: str, claims: Mapping[str, Any]) -> None:
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise _bad_client("jti must be a non-empty string")
        now = self.clock.now().timestamp()
        with self._lock:
            # A jti only needs remembering while its assertion could still be accepted.
            self._seen_jti = {k: exp for k, exp in self._seen_jti.items() if exp > now}
            if (client_id, jti) in self._seen_jti:
                raise _bad_client("jti has already been used")
            self._seen_jti[(client_id, jti)] = float(claims["exp"])

    def check_bearer(self, authorization: str | None) -> str | None:
        """Why a FHIR request's Authorization header is refused, or None if it is fine."""
        if not authorization:
            return "missing"
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return "invalid"
        with self._lock:
            issued = self._tokens.get(value.strip())
        if issued is None:
            return "invalid"
        if issued.expires_at <= self.clock.now():
            return "expired"
        return None


def mock_auth_from_files(
    registrations: list[str], *, token_lifetime: int = 300, clock: Clock | None = None
) -> MockAuth:
    """A MockAuth from ``CLIENT_ID=path/to/jwks.json`` strings (the CLI's flags)."""
    auth = MockAuth(token_lifetime=token_lifetime, clock=clock)
    for item in registrations:
        client_id, sep, path = item.partition("=")
        if not sep or not client_id or not path:
            raise ValueError(f"expected CLIENT_ID=path/to/jwks.json, got {item!r}")
        with open(path, encoding="utf-8") as handle:
            auth.register_client(client_id, json.load(handle))
    return auth


def _find_key(registered: Mapping[str, Any], kid: object, alg: str, client_id: str) -> Any:
    """The registered public key with this kid, usable with this alg."""
    if not isinstance(kid, str):
        raise _bad_client("the JWT header needs a kid naming the registered key")
    for jwk in registered["keys"]:
        if jwk.get("kid") != kid:
            continue
        if jwk.get("alg") not in (None, alg):
            raise _bad_client(f"key {kid!r} is registered for {jwk.get('alg')}, not {alg}")
        try:
            return jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError:
            raise _bad_client(f"key {kid!r} cannot verify {alg}") from None
    raise _bad_client(f"no key with kid {kid!r} is registered for client {client_id!r}")


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body as single values (RFC 6749 forbids repeated parameters)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "body must be application/x-www-form-urlencoded")
    try:
        parsed = parse_qs((await request.body()).decode("ascii"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "body is not a valid form") from None
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise OAuthError("invalid_request", f"parameters repeated: {', '.join(repeated)}")
    return {name: values[0] for name, values in parsed.items()}


def _plain_url(request: Request) -> str:
    return str(request.url.replace(query=None, fragment=None))


class RequireBearer:
    """ASGI middleware: a valid access token for everything under the FHIR prefix."""

    def __init__(self, app: ASGIApp, *, auth: MockAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 401 with an OperationOutcome."""
        if scope["type"] != "http" or not self._protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        problem = self.auth.check_bearer(authorization)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _unauthorized(problem)(scope, receive, send)

    def _protected(self, path: str) -> bool:
        prefix = self.auth.fhir_prefix
        if path != prefix and not path.startswith(prefix + "/"):
            return False
        return path.removeprefix(prefix) not in PUBLIC_FHIR_PATHS


def _unauthorized(problem: str) -> JSONResponse:
    text = {
        "missing": "an access token is required (Authorization: Bearer ...)",
        "invalid": "the access token is not valid",
        "expired": "the access token has expired",
    }[problem]
    challenge = f'Bearer realm="{REALM}"'
    if problem != "missing":  # RFC 6750 §3.1: no error code when no token was sent
        challenge += f', error="invalid_token", error_description="{text}"'
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "expired" if problem == "expired" else "login",
                "diagnostics": text,
            }
        ],
    }
    return JSONResponse(
        outcome,
        status_code=401,
        headers={"WWW-Authenticate": challenge},
        media_type="application/fhir+json",
    )
