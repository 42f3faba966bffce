"""Authentication to FHIR endpoints: static bearer, SMART Backend Services, mutual TLS.

SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html):
the client proves who it is with a short-lived JWT signed by its private key
(``private_key_jwt``, RFC 7523) and gets an access token for the ``client_credentials``
grant. Tokens, assertions and keys never appear in logs or error messages.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import certifi
import httpx
import jwt
from pydantic import SecretStr

from healthy_homes.clock import Clock, SystemClock
from healthy_homes.config.models import AuthConfig
from healthy_homes.errors import (
    RETRYABLE_STATUS,
    ConfigError,
    FhirAuthError,
    FhirStatusError,
    FhirTransportError,
)
from healthy_homes.fhir.keys import PrivateKey, algorithm_for, load_private_key, thumbprint_kid
from healthy_homes.fhir.tls import verify_for

log = logging.getLogger(__name__)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
DEFAULT_TOKEN_LIFETIME = 300  # seconds, when the server leaves out expires_in
TOKEN_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class BearerAuth(httpx.Auth):
    """A fixed bearer token, e.g. one issued by hand for a pilot."""

    def __init__(self, token: str | SecretStr) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the Authorization header."""
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


@dataclass(frozen=True)
class AccessToken:
    """An access token and the moment we stop using it."""

    value: str = field(repr=False)
    refresh_at: datetime
    scope: str | None = None


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services client: private_key_jwt assertion, cached access token."""

    def __init__(
        self,
        *,
        client_id: str,
        token_url: str,
        private_key: PrivateKey | Path | str,
        scope: str,
        key_id: str | None = None,
        clock: Clock | None = None,
        refresh_margin: timedelta = timedelta(seconds=30),
        assertion_lifetime: timedelta = timedelta(minutes=4),
        http: httpx.AsyncClient | None = None,
        verify: bool | ssl.SSLContext = True,
        practice: str | None = None,
    ) -> None:
        if not timedelta(0) < assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ConfigError("assertion_lifetime must be more than 0 and at most 5 minutes")
        self._key = (
            private_key if isinstance(private_key, PrivateKey) else load_private_key(private_key)
        )
        self.client_id = client_id
        self.token_url = token_url
        self.scope = scope
        self.algorithm = algorithm_for(self._key)
        self.key_id = key_id or thumbprint_kid(self._key)
        self.practice = practice
        self._clock = clock or SystemClock()
        self._margin = refresh_margin
        self._assertion_lifetime = assertion_lifetime
        self._http = http
        self._verify = verify
        self._cached: AccessToken | None = None
        self._lock: asyncio.Lock | None = None
        #: How many token requests this object has sent; lets tests prove reuse.
        self.fetches = 0

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse: fetching a token needs the async client."""
        raise RuntimeError("SmartBackendAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with a cached token; on a 401 drop it and try once more with a fresh one."""
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == 401:
            # The server may have restarted or revoked the token before its expiry.
            self.forget(token)
            token = await self.token()
            request.headers["Authorization"] = f"Bearer {token.value}"
            yield request

    def forget(self, token: AccessToken | None = None) -> None:
        """Drop the cached token (only if it is still ``token``, when given)."""
        if token is None or self._cached is token:
            self._cached = None

    async def token(self) -> AccessToken:
        """The cached access token, fetching a new one when it is close to expiry."""
        cached = self._cached
        if cached is not None and self._clock.now() < cached.refresh_at:
            return cached
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # Another task may have fetched while we waited: one fetch serves them all.
            cached = self._cached
            if cached is not None and self._clock.now() < cached.refresh_at:
                return cached
            self._cached = await self._fetch()
            return self._cached

    def client_assertion(self, now: datetime | None = None) -> str:
        """A signed JWT proving we hold the registered key; unique jti each time."""
        issued = now or self._clock.now()
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": int(issued.timestamp()),
            "exp": int((issued + self._assertion_lifetime).timestamp()),
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.key_id, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    async def _fetch(self) -> AccessToken:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }
        try:
            if self._http is not None:
                response = await self._post(self._http, form)
            else:
                async with httpx.AsyncClient(
                    timeout=TOKEN_TIMEOUT, verify=verify_for(self._verify)
                ) as http:
                    response = await self._post(http, form)
        except httpx.TransportError as exc:
            raise FhirTransportError(
                f"token endpoint unreachable: {type(exc).__name__}",
                url=self.token_url,
                practice=self.practice,
            ) from exc
        self.fetches += 1
        return self._read_token(response)

    async def _post(self, http: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
        return await http.post(self.token_url, data=form, headers={"Accept": "application/json"})

    def _read_token(self, response: httpx.Response) -> AccessToken:
        if response.status_code != 200:
            raise self._refusal(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise FhirAuthError(
                "token endpoint answered without an access_token",
                url=self.token_url,
                practice=self.practice,
            )
        if str(body.get("token_type", "")).lower() != "bearer":
            raise FhirAuthError(
                f"token endpoint issued a {body.get('token_type')!r} token; expected bearer",
                url=self.token_url,
                practice=self.practice,
            )
        lifetime = _seconds(body.get("expires_in"))
        margin = min(self._margin, lifetime / 2)  # a very short token still gets some use
        log.debug("fetched access token for %s, valid %s", self.client_id, lifetime)
        return AccessToken(
            value=body["access_token"],
            refresh_at=self._clock.now() + lifetime - margin,
            scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
        )

    def _refusal(self, response: httpx.Response) -> Exception:
        """The error for a non-200 token answer: OAuth refusal, or a temporary failure."""
        if response.status_code in RETRYABLE_STATUS:
            return FhirStatusError(
                f"token endpoint answered HTTP {response.status_code}",
                status_code=response.status_code,
                url=self.token_url,
                practice=self.practice,
            )
        error, description = _oauth_error(response)
        detail = f"{error}: {description}" if description else error
        return FhirAuthError(
            f"token endpoint refused client {self.client_id} "
            f"(HTTP {response.status_code}): {detail}",
            url=self.token_url,
            practice=self.practice,
        )


def _seconds(value: Any) -> timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    return timedelta(seconds=DEFAULT_TOKEN_LIFETIME)


def _oauth_error(response: httpx.Response) -> tuple[str, str | None]:
    """``error`` and ``error_description`` of an RFC 6749 §5.2 answer, made safe to log."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return "no OAuth error in the answer", None
    error = _printable(body.get("error")) or "unknown_error"
    return error, _printable(body.get("error_description"))


def _printable(value: Any, limit: int = 200) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    # RFC 6749 limits these to printable ASCII; anything else is not ours to repeat.
    cleaned = "".join(ch for ch in value if " " <= ch <= "~")
    return cleaned[:limit]


def mtls_context(cert_file: str, key_file: str, ca_file: str | None = None) -> ssl.SSLContext:
    """An SSL context presenting our client certificate; pass it as ``verify=``.

    httpx 0.28 deprecates ``cert=``; the context carries both the certificate we
    present and the authorities we trust (``ca_file``, else certifi's bundle).
    """
    context = ssl.create_default_context(cafile=ca_file or certifi.where())
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load client certificate {cert_file} with key {key_file}: {type(exc).__name__}"
        ) from None
    return context


def tls_from_config(config: AuthConfig) -> bool | ssl.SSLContext:
    """The ``verify`` argument for FhirClient: an mTLS context, or True."""
    if config.kind != "mtls":
        return True
    cert_file = _needed(config.client_cert_file, "client_cert_file")
    key_file = _needed(config.client_key_file, "client_key_file")
    return mtls_context(cert_file, key_file, config.ca_file)


def _needed(value: object | None, name: str) -> str:
    # AuthConfig's validator already insists; this keeps the types honest.
    if value is None:
        raise ConfigError(f"auth configuration is missing {name}")
    return str(value)


def auth_from_config(
    config: AuthConfig,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    practice: str | None = None,
) -> httpx.Auth | None:
    """The httpx.Auth for an endpoint's configuration (None for ``none`` and ``mtls``)."""
    if config.kind == "bearer":
        if config.token is None:
            raise ConfigError("auth kind 'bearer' needs a token")
        return BearerAuth(config.token)
    if config.kind == "smart":
        return SmartBackendAuth(
            client_id=_needed(config.client_id, "client_id"),
            token_url=_needed(config.token_url, "token_url"),
            private_key=_needed(config.private_key_file, "private_key_file"),
            key_id=config.key_id,
            scope=config.scope,
            clock=clock,
            http=http,
            practice=practice,
        )
    return None
