"""Load a keyring from the key file, the ``[security]`` settings or the environment; write it.

The key file is JSON::

    {"format": "healthy-homes-keys/1", "active_key": "k20261124-3f9a1c",
     "data_keys": {"k20261124-3f9a1c": "<base64 of 32 bytes>"},
     "hmac_key": "<base64 of 32 bytes>"}

It must be readable by its owner only (mode 0600): the keys protect every patient's
identifiable data, and a key file others can read is refused rather than used.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from healthy_homes.config.security import SecurityConfig
from healthy_homes.crypto.keyring import KeyRing
from healthy_homes.errors import KeyFilePermissionError, KeyMissingError

FORMAT: Literal["healthy-homes-keys/1"] = "healthy-homes-keys/1"
ENV = "HEALTHY_HOMES__SECURITY__"


class KeyFile(BaseModel):
    """The key file's JSON."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["healthy-homes-keys/1"] = FORMAT
    active_key: str
    data_keys: dict[str, str]
    hmac_key: str
    previous_hmac_key: str | None = None


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KeyMissingError(f"{what} is not valid base64") from None


def _ring(
    active: str,
    data_keys: Mapping[str, str],
    hmac_key: str,
    source: str,
    previous_hmac_key: str | None = None,
) -> KeyRing:
    keys = {kid: _b64(value, f"data key '{kid}' in {source}") for kid, value in data_keys.items()}
    previous = None
    if previous_hmac_key is not None:
        previous = _b64(previous_hmac_key, f"previous_hmac_key in {source}")
    try:
        return KeyRing(
            keys, active, _b64(hmac_key, f"hmac_key in {source}"), previous_hmac_key=previous
        )
    except KeyMissingError as exc:
        raise KeyMissingError(f"{exc.message} (in {source})") from None


def load_key_file(path: Path | str) -> KeyRing:
    """Read the key file, refusing it if others than the owner may read or write it."""
    target = Path(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        raise KeyMissingError(
            f"key file {target} not found; create one with 'healthy-homes keys create-keyring'"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFilePermissionError(
            f"key file {target} has mode {stat.S_IMODE(mode):04o}; it must be 0600 "
            f"(run: chmod 600 {target})"
        )
    try:
        document = KeyFile.model_validate(json.loads(target.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        kind = "not JSON" if isinstance(exc, json.JSONDecodeError) else "not a key file"
        raise KeyMissingError(f"key file {target} is {kind} ({FORMAT})") from None
    return _ring(
        document.active_key,
        document.data_keys,
        document.hmac_key,
        str(target),
        document.previous_hmac_key,
    )


def write_key_file(path: Path | str, ring: KeyRing, *, replace: bool = False) -> None:
    """Write the keyring as a 0600 key file; ``replace`` swaps an existing one atomically."""
    target = Path(path)
    if target.exists() and not replace:
        raise KeyMissingError(f"{target} already exists; refusing to overwrite a key file")
    document = KeyFile(
        active_key=ring.active_key_id,
        data_keys={
            kid: base64.b64encode(ring.data_key(kid)).decode("ascii") for kid in ring.key_ids
        },
        hmac_key=base64.b64encode(ring.hmac_key).decode("ascii"),
        previous_hmac_key=_b64_or_none(ring.previous_hmac_key),
    )
    temporary = target.with_name(f".{target.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(document.model_dump_json(indent=2, exclude_none=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    # The old file stays whole until the new one is complete on disk.
    os.replace(temporary, target)


def _b64_or_none(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def keyring_from_config(config: SecurityConfig) -> KeyRing:
    """The keyring ``[security]`` describes; no keys configured is an error, never plaintext."""
    if config.key_file is not None:
        return load_key_file(config.key_file)
    if not config.configured or config.active_key is None or config.hmac_key is None:
        raise KeyMissingError(
            "no encryption keys configured: set [security] key_file (create one with "
            "'healthy-homes keys create-keyring --out FILE') or HEALTHY_HOMES__SECURITY__"
            "ACTIVE_KEY, __DATA_KEYS and __HMAC_KEY"
        )
    data = {kid: secret.get_secret_value() for kid, secret in config.data_keys.items()}
    return _ring(config.active_key, data, config.hmac_key.get_secret_value(), "[security]")


def security_from_environment(environ: Mapping[str, str]) -> SecurityConfig:
    """The ``[security]`` settings given as ``HEALTHY_HOMES__SECURITY__*`` variables."""
    raw: dict[str, object] = {}
    for key in ("key_file", "active_key", "hmac_key"):
        if value := environ.get(ENV + key.upper()):
            raw[key] = value
    if value := environ.get(ENV + "DATA_KEYS"):
        try:
            raw["data_keys"] = json.loads(value)
        except ValueError:
            raise KeyMissingError(f"{ENV}DATA_KEYS is not a JSON object") from None
    try:
        return SecurityConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors(include_input=False))
        raise KeyMissingError(f"{ENV}* variables are inconsistent: {problems}") from None
