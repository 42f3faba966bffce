"""Key rotation: a new data key and HMAC key, every value re-encrypted, the old key dropped.

Order matters for crash safety. The key file first gains the new key while keeping the
old one, so whatever state the database is left in, every value stays readable. Only
when no value under an old key remains is the old key removed from the file. A run
interrupted in between is resumed by running it again: a key file holding more than
one data key means the last rotation has not finished, and no further key is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthy_homes.audit.reseal import reseal
from healthy_homes.clock import SystemClock
from healthy_homes.crypto import load_key_file, set_keyring, write_key_file
from healthy_homes.errors import CryptoError
from healthy_homes.store.db import Database
from healthy_homes.store.rekey import reencrypt, rehash, stale_values


@dataclass(frozen=True)
class RotationResult:
    """What one rotation did."""

    old_key_ids: tuple[str, ...]
    new_key_id: str
    resumed: bool
    reencrypted: dict[str, int]
    rehashed: dict[str, int]


def rotate(
    db: Database, key_file: Path, *, new_hmac: bool = True, batch_size: int = 500
) -> RotationResult:
    """Rotate the keys in ``key_file`` and re-encrypt ``db`` under the new active key."""
    current = load_key_file(key_file)
    resumed = len(current.key_ids) > 1
    ring = current if resumed else current.with_new_active_key(new_hmac=new_hmac)
    old_ids = tuple(k for k in ring.key_ids if k != ring.active_key_id)
    if not resumed:
        if new_hmac:
            # Audit MACs and pseudonyms are keyed hashes: re-sealed while both keys are known.
            reseal(db, current, ring, SystemClock())
        write_key_file(key_file, ring, replace=True)
    set_keyring(ring)
    reencrypted = reencrypt(db.engine, ring, batch_size=batch_size)
    rehashed = rehash(db.engine, batch_size=batch_size)
    stale = stale_values(db.engine, ring)
    if stale:
        # Something wrote under an old key meanwhile (a connector still running on the
        # old key file?): keep every key and say where, rather than lose data.
        where = ", ".join(f"{name} ({count})" for name, count in sorted(stale.items()))
        raise CryptoError(
            f"values still under an old key after re-encryption: {where}; stop every "
            "process using the database and run 'healthy-homes keys rotate' again"
        )
    final = ring.only_active()
    write_key_file(key_file, final, replace=True)
    set_keyring(final)
    return RotationResult(old_ids, final.active_key_id, resumed, reencrypted, rehashed)
