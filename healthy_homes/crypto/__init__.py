"""Encryption at rest (AES-256-GCM) and keyed hashes (HMAC-SHA256) for patient data.

A bottom-layer package: it imports only ``config``, ``errors``, the standard library
and ``cryptography``. ``encrypt``/``decrypt``/``keyed_hash`` use the process keyring
(:func:`set_keyring`); :class:`KeyRing` has the same methods for an explicit one.
"""

from healthy_homes.crypto.active import (
    decrypt,
    encrypt,
    get_keyring,
    has_keyring,
    keyed_hash,
    set_keyring,
)
from healthy_homes.crypto.keyfile import (
    keyring_from_config,
    load_key_file,
    security_from_environment,
    write_key_file,
)
from healthy_homes.crypto.keyring import KeyRing

#: keyed_hash purposes used across the package; one place so they never drift.
NHS_NUMBER_PURPOSE = "nhs-number"
PATIENT_PSEUDONYM_PURPOSE = "patient-pseudonym"

__all__ = [
    "NHS_NUMBER_PURPOSE",
    "PATIENT_PSEUDONYM_PURPOSE",
    "KeyRing",
    "decrypt",
    "encrypt",
    "get_keyring",
    "has_keyring",
    "keyed_hash",
    "keyring_from_config",
    "load_key_file",
    "security_from_environment",
    "set_keyring",
    "write_key_file",
]
