"""Who is calling: the EHR's JWT, checked as CDS Hooks 2.0 requires.

https://cds-hooks.hl7.org/2.0/#trusting-cds-clients: ``Authorization: Bearer <JWT>``
signed with the EHR's private key; header alg, kid, typ JWT (jku optional); claims
iss, aud (the exact URL of the service called), exp, iat, jti. We accept RS384 and
ES384 only (never ``none`` or a shared-secret HMAC), from an allowlist of issuers,
and each jti once. Time comes from the injectable clock, so tests never wait.
Refusals say what was wrong with the token, never what it contained.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from healthy_homes.clock import Clock
from healthy_homes.config.cds_hooks import CdsHooksConfig, CdsIssuerConfig
from healthy_homes.errors import CdsAuthError

ALGORITHMS = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
REFETCH_AFTER = 30.0  # seconds: an unknown kid fetches the set again, but not more often
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


@dataclass(frozen=True)
class Caller:
    """A verified EHR: its issuer entry (hence its practice) and the token's claims."""

    issuer: CdsIssuerConfig
    claims: dict[str, Any]

    @property
    def practice_ods(self) -> str:
        """The practice this EHR speaks for."""
        return self.issuer.practice_ods


@dataclass
class _KeySet:
    jwks: dict[str, dict[str, Any]]
    fetched_at: float
    parsed: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict)


class ReplayCache:
    """Each (iss, jti) is accepted once, until its token would have expired anyway."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """Record the jti; False if it was seen before (a replay) or the cache is full."""
        key = (iss, jti)
        with self._lock:
            if len(self._seen) >= self._max:
                self._seen = {k: e for k, e in self._seen.items() if e > now}
                if len(self._seen) >= self._max:
                    return False  # refusing beats forgetting a jti that may come back
            if key in self._seen and self._seen[key] > now:
                return False
            self._seen[key] = exp
            return True


class KeySets:
    """JWK Sets of the allowed issuers: inline, or fetched with httpx and cached."""

    def __init__(
        self,
        config: CdsHooksConfig,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._http = httpx.AsyncClient(transport=transport, timeout=config.fetch_timeout_seconds)
        self._sets: dict[str, _KeySet] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    def _inline(self, issuer: CdsIssuerConfig) -> _KeySet:
        found = self._sets.get(issuer.iss)
        if found is None:
            found = _KeySet(_by_kid(issuer.jwks or {}), 0.0)
            self._sets[issuer.iss] = found
        return found

    async def _fetch(self, issuer: CdsIssuerConfig, now: float) -> _KeySet:
        url = str(issuer.jwks_url)
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CdsAuthError(
                f"the issuer's key set could not be fetched ({type(exc).__name__})"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise CdsAuthError("the issuer's key set is not a JWK Set")
        fresh = _KeySet(_by_kid(body), now)
        self._sets[issuer.iss] = fresh
        return fresh

    async def key(self, issuer: CdsIssuerConfig, kid: str, alg: str) -> jwt.PyJWK:
        """The issuer's public key ``kid`` for ``alg``; CdsAuthError if it has none."""
        if issuer.jwks is not None:
            return _parsed(self._inline(issuer), kid, alg)
        now = self.clock.now().timestamp()
        cached = self._sets.get(issuer.iss)
        stale = cached is None or now - cached.fetched_at >= self.config.jwks_cache_seconds
        unknown = (
            cached is not None
            and kid not in cached.jwks
            and now - cached.fetched_at >= REFETCH_AFTER
        )
        if stale or unknown:
            lock = self._locks.setdefault(issuer.iss, asyncio.Lock())
            async with lock:
                current = self._sets.get(issuer.iss)
                if current is cached:  # nobody refreshed it while we waited
                    try:
                        cached = await self._fetch(issuer, now)
                    except CdsAuthError:
                        if cached is None:
                            raise
                else:
                    cached = current
        assert cached is not None
        return _parsed(cached, kid, alg)


def _by_kid(jwks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(k["kid"]): k
        for k in jwks.get("keys") or []
        if isinstance(k, dict) and isinstance(k.get("kid"), str)
    }


def _parsed(keyset: _KeySet, kid: str, alg: str) -> jwt.PyJWK:
    """The PyJWK for (kid, alg), refusing a key of another type or meant for another alg."""
    cached = keyset.parsed.get((kid, alg))
    if cached is not None:
        return cached
    jwk = keyset.jwks.get(kid)
    if jwk is None:
        raise CdsAuthError("the token was signed with a key the issuer has not published")
    kty, crv = ALGORITHMS[alg]
    if jwk.get("kty") != kty or (crv and jwk.get("crv") != crv) or jwk.get("alg", alg) != alg:
        raise CdsAuthError("the issuer's key does not match the token's algorithm")
    if jwk.get("use", "sig") != "sig":
        raise CdsAuthError("the issuer's key is not a signing key")
    try:
        parsed = jwt.PyJWK(jwk, algorithm=alg)
    except jwt.exceptions.PyJWKError:
        raise CdsAuthError("the issuer's key could not be read") from None
    keyset.parsed[(kid, alg)] = parsed
    return parsed


class TokenVerifier:
    """Checks ``Authorization: Bearer <JWT>`` headers against the issuer allowlist."""

    def __init__(self, config: CdsHooksConfig, clock: Clock, keys: KeySets) -> None:
        self.config = config
        self.clock = clock
        self.keys = keys
        self.replays = ReplayCache()

    async def verify(self, authorization: str | None, audiences: Sequence[str]) -> Caller:
        """The verified caller, or CdsAuthError saying what is wrong with the token."""
        token = _bearer(authorization)
        header, unverified = _peek(token)
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise CdsAuthError("JWT algorithm not accepted; use RS384 or ES384")
        if header.get("typ", "JWT") != "JWT":
            raise CdsAuthError("JWT header typ must be JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise CdsAuthError("JWT header has no kid")
        iss = unverified.get("iss")
        issuer = self.config.issuer(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise CdsAuthError("JWT issuer is not on the allowlist")
        jku = header.get("jku")
        if jku is not None and (issuer.jwks_url is None or jku != str(issuer.jwks_url)):
            raise CdsAuthError("JWT jku is not the key set registered for this issuer")
        key = await self.keys.key(issuer, kid, alg)
        claims = self._decode(token, key, alg, audiences, issuer.iss)
        self._check_times_and_tenant(claims, issuer)
        if not self.replays.first_use(
            issuer.iss, str(claims["jti"]), float(claims["exp"]), self.clock.now().timestamp()
        ):
            raise CdsAuthError("JWT jti has been used before (replay)")
        return Caller(issuer, claims)

    def _decode(
        self, token: str, key: jwt.PyJWK, alg: str, audiences: Sequence[str], iss: str
    ) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=iss,
                # Times are checked against our clock below, not the wall clock.
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.exceptions.InvalidAudienceError:
            raise CdsAuthError("JWT audience is not this service's URL") from None
        except jwt.exceptions.MissingRequiredClaimError as exc:
            raise CdsAuthError(f"JWT lacks the {exc.claim} claim") from None
        except jwt.exceptions.InvalidSignatureError:
            raise CdsAuthError("JWT signature does not verify") from None
        except jwt.exceptions.PyJWTError:
            raise CdsAuthError("JWT could not be verified") from None

    def _check_times_and_tenant(self, claims: dict[str, Any], issuer: CdsIssuerConfig) -> None:
        now, skew = self.clock.now().timestamp(), self.config.clock_skew_seconds
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
        except (TypeError, ValueError):
            raise CdsAuthError("JWT exp and iat must be numbers") from None
        if exp <= now - skew:
            raise CdsAuthError("JWT has expired")
        if iat > now + skew:
            raise CdsAuthError("JWT was issued in the future")
        if exp > now + self.config.max_token_lifetime_seconds + skew:
            raise CdsAuthError("JWT lives too long; keep exp within a few minutes")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + skew:
            raise CdsAuthError("JWT is not valid yet")
        if not isinstance(claims.get("jti"), str):
            raise CdsAuthError("JWT jti must be a string")
        if issuer.tenant is not None and claims.get("tenant") != issuer.tenant:
            raise CdsAuthError("JWT tenant is not the one registered for this issuer")


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, unverified: only to pick the issuer and key.

    PyJWT's own parse is thorough but slow; the one verified decode that follows
    parses again and checks everything, so this only has to fail safely.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise CdsAuthError("the bearer token is not a well-formed JWT")
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, TypeError):
        raise CdsAuthError("the bearer token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise CdsAuthError("the bearer token is not a well-formed JWT")
    return header, claims


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise CdsAuthError("no Authorization header; send 'Bearer <JWT>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("Authorization must be 'Bearer <JWT>'")
    return token.strip()
