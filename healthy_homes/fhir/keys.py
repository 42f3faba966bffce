"""Signing keys for SMART Backend Services: generate, store, load, publish as JWKS.

RS384 uses RSA 3072-bit keys and ES384 the P-384 curve (RFC 7518 §3.3, §3.4).
A key's ``kid`` defaults to its RFC 7638 thumbprint, so the same key always has the
same id and nobody has to keep a second name for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from healthy_homes.errors import ConfigError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
ALGORITHMS = ("RS384", "ES384")
RSA_BITS = 3072
MIN_RSA_BITS = 2048


def generate_private_key(algorithm: str) -> PrivateKey:
    """A fresh private key for ``RS384`` (RSA 3072) or ``ES384`` (P-384)."""
    if algorithm == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if algorithm == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ConfigError(f"unsupported signing algorithm {algorithm!r}; expected RS384 or ES384")


def algorithm_for(key: PrivateKey) -> str:
    """The JWS algorithm this key signs with; refuses keys too weak for SMART."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"RSA key of {key.key_size} bits is too short; use at least 2048")
        return "RS384"
    if isinstance(key.curve, ec.SECP384R1):
        return "ES384"
    raise ConfigError(f"EC key on curve {key.curve.name} cannot sign ES384; use P-384")


def private_key_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (protect it with file permissions)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key(path: Path | str, key: PrivateKey, *, force: bool = False) -> None:
    """Write the key to ``path`` readable by its owner only (0600)."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{target} already exists; pass --force to replace it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write key file {target}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        # O_TRUNC keeps an existing file's mode, so tighten it before the key goes in.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(private_key_pem(key))


def load_private_key(path: Path | str) -> PrivateKey:
    """Read a PEM private key (RSA or P-384), naming the file but never its content."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key file {target}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{target} is not an unencrypted PEM private key "
            "(make one with 'healthy-homes keys generate')"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{target} holds a {type(key).__name__}; expected an RSA or EC key")
    algorithm_for(key)
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return _b64url(value.to_bytes(size, "big"))


def _public_members(key: PrivateKey) -> dict[str, str]:
    """The JWK members that define the public key (RFC 7518 §6.2, §6.3)."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    point = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8  # coordinates are fixed-length
    return {"kty": "EC", "crv": "P-384", "x": _uint(point.x, size), "y": _uint(point.y, size)}


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}.get(jwk.get("kty", ""))
    if required is None:
        raise ValueError(f"no thumbprint rule for key type {jwk.get('kty')!r}")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def thumbprint_kid(key: PrivateKey) -> str:
    """The default ``kid``: the RFC 7638 thumbprint of the public key."""
    return jwk_thumbprint(_public_members(key))


def public_jwk(key: PrivateKey, *, kid: str | None = None) -> dict[str, str]:
    """The public half of ``key`` as a JWK with alg, use and kid."""
    members = _public_members(key)
    return {
        **members,
        "alg": algorithm_for(key),
        "use": "sig",
        "kid": kid or jwk_thumbprint(members),
    }


def public_jwks(key: PrivateKey, *, kid: str | None = None) -> dict[str, list[dict[str, str]]]:
    """A JWK Set holding the public half of ``key``, to register with a practice."""
    return {"keys": [public_jwk(key, kid=kid)]}
