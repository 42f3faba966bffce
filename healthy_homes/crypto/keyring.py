"""AES-256-GCM data keys by id, and one HMAC key for keyed hashes.

Envelope of every ciphertext (bytes)::

    0x01 | len(key id) | key id (ASCII) | nonce (12 random bytes) | ciphertext + 16-byte tag

The key id inside the envelope lets older values be read after a new key becomes
active; ``keys rotate`` re-encrypts them and then the old key is dropped. The caller's
AAD (table and column) is authenticated, not stored, so a value moved to another
column fails to decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from healthy_homes.config.security import KEY_ID
from healthy_homes.errors import KeyMissingError, TamperedDataError, UnknownKeyError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
MIN_HMAC_BYTES = 32


def new_key_id() -> str:
    """A fresh, sortable key id such as ``k20261124-3f9a1c``."""
    return f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


class KeyRing:
    """Data keys (one active, older ones kept for reading) plus the keyed-hash key."""

    def __init__(
        self,
        data_keys: Mapping[str, bytes],
        active: str,
        hmac_key: bytes,
        *,
        previous_hmac_key: bytes | None = None,
    ) -> None:
        if not data_keys:
            raise KeyMissingError("keyring has no data keys")
        for key_id, key in data_keys.items():
            if not KEY_ID.match(key_id):
                raise KeyMissingError(f"data key id '{key_id}' must match {KEY_ID.pattern}")
            if len(key) != KEY_BYTES:
                raise KeyMissingError(
                    f"data key '{key_id}' is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )
        if active not in data_keys:
            raise KeyMissingError(f"active key '{active}' is not among the data keys")
        if len(hmac_key) < MIN_HMAC_BYTES:
            raise KeyMissingError(f"HMAC key must be at least {MIN_HMAC_BYTES} bytes")
        self._keys = dict(data_keys)
        self._active = active
        self._hmac_key = hmac_key
        # Kept only while a rotation is under way, so its keyed hashes can be redone.
        self._previous_hmac_key = previous_hmac_key
        # One AESGCM object per key: building it expands the key schedule, which would
        # otherwise happen on every value written on the referral send path.
        self._aead = {key_id: AESGCM(key) for key_id, key in self._keys.items()}
        self._prefix = {key_id: _prefix(key_id) for key_id in self._keys}
        self._purpose_keys: dict[str, bytes] = {}

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A keyring with one new random data key and a new HMAC key."""
        key_id = key_id or new_key_id()
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id, os.urandom(32))

    @property
    def active_key_id(self) -> str:
        """Id of the key new values are encrypted with."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every data key id held, the active one included."""
        return tuple(self._keys)

    def data_key(self, key_id: str) -> bytes:
        """The raw bytes of one data key (for writing the key file)."""
        return self._keys[key_id]

    @property
    def hmac_key(self) -> bytes:
        """The raw HMAC key (for writing the key file)."""
        return self._hmac_key

    @property
    def previous_hmac_key(self) -> bytes | None:
        """The HMAC key a rotation under way replaces (None when none is)."""
        return self._previous_hmac_key

    def hashing_as_before(self) -> KeyRing:
        """This keyring hashing with the HMAC key the current rotation replaces."""
        if self._previous_hmac_key is None:
            raise KeyMissingError("no rotation of the HMAC key is under way")
        return KeyRing(self._keys, self._active, self._previous_hmac_key)

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt under the active key with a random 96-bit nonce."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self._active].encrypt(nonce, plaintext, aad)
        return self._prefix[self._active] + nonce + sealed

    def decrypt(self, envelope: bytes, *, aad: bytes) -> bytes:
        """Decrypt a value from :meth:`encrypt`; the AAD must be the one it was sealed with."""
        key_id, nonce, sealed = parse_envelope(envelope)
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKeyError(
                f"value was encrypted with key '{key_id}', which this keyring does not hold "
                f"(it holds {', '.join(self._keys)})"
            )
        try:
            return aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise TamperedDataError(
                f"value under key '{key_id}' failed authentication for "
                f"{aad.decode('ascii', 'replace')}: changed, moved, or a different key"
            ) from None

    def key_id_of(self, envelope: bytes) -> str:
        """The data key id a ciphertext was sealed with."""
        return parse_envelope(envelope)[0]

    def keyed_hash(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` (hex) under a key derived for ``purpose`` alone.

        Deriving a key per purpose keeps hashes of one kind (NHS numbers for lookup)
        from matching hashes of another (pseudonymous ids in the audit log).
        """
        key = self._purpose_keys.get(purpose)
        if key is None:
            key = hmac.digest(self._hmac_key, b"healthy-homes/" + purpose.encode(), "sha256")
            self._purpose_keys[purpose] = key
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def with_new_active_key(self, key_id: str | None = None, *, new_hmac: bool = True) -> KeyRing:
        """This keyring plus a new active data key (old ones kept) and a new HMAC key."""
        key_id = key_id or new_key_id()
        if key_id in self._keys:
            raise KeyMissingError(f"key id '{key_id}' is already in the keyring")
        keys = self._keys | {key_id: AESGCM.generate_key(bit_length=256)}
        if not new_hmac:
            return KeyRing(keys, key_id, self._hmac_key)
        return KeyRing(keys, key_id, os.urandom(32), previous_hmac_key=self._hmac_key)

    def only_active(self) -> KeyRing:
        """This keyring without its older data keys (and without a replaced HMAC key)."""
        return KeyRing({self._active: self._keys[self._active]}, self._active, self._hmac_key)


def _prefix(key_id: str) -> bytes:
    raw = key_id.encode("ascii")
    return bytes((VERSION, len(raw))) + raw


def parse_envelope(envelope: bytes) -> tuple[str, bytes, bytes]:
    """Split an envelope into key id, nonce and sealed bytes; refuse anything malformed."""
    if len(envelope) < 2 or envelope[0] != VERSION:
        raise TamperedDataError("value is not a Healthy Homes ciphertext (unknown envelope)")
    end = 2 + envelope[1]
    if len(envelope) < end + NONCE_BYTES + 16:
        raise TamperedDataError("ciphertext is truncated")
    key_id = envelope[2:end].decode("ascii", "replace")
    return key_id, envelope[end : end + NONCE_BYTES], envelope[end + NONCE_BYTES :]
