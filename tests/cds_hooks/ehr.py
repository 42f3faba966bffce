"""A test EHR: signing keys, JWTs as CDS Hooks clients send them, and hook request bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import jwt

from healthy_homes.fhir.keys import PrivateKey, generate_private_key, public_jwk

ISSUER = "https://ehr.example.nhs.uk"
BASE = "https://cds.example.org"
SERVICE = "healthy-homes-patient-view"
SERVICE_URL = f"{BASE}/cds-services/{SERVICE}"


@cache
def key(alg: str = "ES384", name: str = "ehr") -> PrivateKey:
    """One key per (alg, name) for the whole test session (RSA 3072 is slow to make)."""
    return generate_private_key(alg)


def jwk(alg: str = "ES384", name: str = "ehr") -> dict[str, str]:
    """The public JWK of a test key."""
    return public_jwk(key(alg, name), kid=f"{name}-{alg.lower()}")


def jwks(*keys: tuple[str, str]) -> dict[str, Any]:
    """A JWK Set of test keys, given as (alg, name) pairs."""
    return {"keys": [jwk(alg, name) for alg, name in keys or (("ES384", "ehr"),)]}


def token(
    now: datetime,
    *,
    aud: str | list[str] = SERVICE_URL,
    iss: str = ISSUER,
    alg: str = "ES384",
    name: str = "ehr",
    kid: str | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    jti: str | None = None,
    drop: tuple[str, ...] = (),
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A JWT as the CDS Hooks spec has the EHR sign it."""
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": jti or str(uuid.uuid4()),
        **claims,
    }
    for name_ in drop:
        payload.pop(name_, None)
    header = {"kid": kid or f"{name}-{alg.lower()}", "typ": "JWT", **(headers or {})}
    return jwt.encode(payload, key(alg, name), algorithm=alg, headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(now: datetime, *, alg: str = "none", secret: bytes = b"") -> str:
    """A token with alg none (no signature) or an HMAC one made with ``secret``."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "ehr-es384"}).encode())
    body = _b64(
        json.dumps(
            {
                "iss": ISSUER,
                "aud": SERVICE_URL,
                "iat": int(now.timestamp()),
                "exp": int(now.timestamp()) + 300,
                "jti": str(uuid.uuid4()),
            }
        ).encode()
    )
    if alg == "none":
        return f"{header}.{body}."
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def bearer(value: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {value}"}


def hook_body(
    patient_id: str,
    *,
    hook: str = "patient-view",
    prefetch: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A hook request as the spec's example has it."""
    context: dict[str, Any] = {"userId": "Practitioner/dr-demo", "patientId": patient_id}
    if hook == "appointment-book":
        context["appointments"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    if hook == "encounter-start":
        context["encounterId"] = "enc-1"
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        **extra,
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body
