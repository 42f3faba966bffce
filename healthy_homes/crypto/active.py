"""The process-wide keyring the database columns and keyed hashes use.

Opening the database from settings (``Database.from_settings``) or a command installs
it; a process that installs none (a worker started with only the environment) gets
the keys from ``HEALTHY_HOMES__SECURITY__*``. With neither, every encrypt, decrypt and
keyed hash raises :class:`KeyMissingError`: there is no plaintext fallback.
"""

from __future__ import annotations

import os
import threading

from healthy_homes.crypto.keyfile import keyring_from_config, security_from_environment
from healthy_homes.crypto.keyring import KeyRing

_lock = threading.Lock()
_active: KeyRing | None = None


def set_keyring(ring: KeyRing | None) -> None:
    """Install ``ring`` for this process (``None`` removes it)."""
    global _active
    with _lock:
        _active = ring


def get_keyring() -> KeyRing:
    """The installed keyring, else the one the environment describes; else KeyMissingError."""
    global _active
    ring = _active
    if ring is not None:
        return ring
    with _lock:
        if _active is None:
            _active = keyring_from_config(security_from_environment(os.environ))
        return _active


def has_keyring() -> bool:
    """Whether a keyring is installed in this process."""
    return _active is not None


def encrypt(plaintext: bytes, *, aad: bytes) -> bytes:
    """Encrypt with the process keyring's active key; ``aad`` names table and column."""
    return get_keyring().encrypt(plaintext, aad=aad)


def decrypt(envelope: bytes, *, aad: bytes) -> bytes:
    """Decrypt with the process keyring; the AAD must match the one used to encrypt."""
    return get_keyring().decrypt(envelope, aad=aad)


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 hex of ``value`` under the process keyring, separated by ``purpose``."""
    return get_keyring().keyed_hash(purpose, value)
