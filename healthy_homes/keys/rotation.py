"""Key rotation: a new data key and HMAC key, every value re-encrypted, the old key dropped.

Order matters for crash safety. The key file first gains the new key while keeping the
old one, so whatever state the database is left in, every value stays readable. Only
when no value under an old key remains is the old key removed from the file. A run
interrupted in between is resumed by running it again: a key file holding more than
one data key, or a replaced HMAC key, means the last rotation has not finished, and no
further key is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthy_homes.audit.reseal import reseal
from healthy_homes.audit.verify import verify_log
from healthy_homes.clock import SystemClock
from healthy_homes.crypto import KeyRing, load_key_file, set_keyring, write_key_file
from healthy_homes.errors import CryptoError
from healthy_homes.store.db import Database
from healthy_homes.store.rekey import reencrypt, rehash, stale_values


def _reseal_audit(db: Database, ring: KeyRing) -> None:
    """Move the audit chain to ``ring``'s HMAC key, unless a previous run already did."""
    before = ring.hashing_as_before()
    with db.session() as session:
        done = verify_log(session, ring).ok and not verify_log(session, before).ok
    if not done:
        # Audit MACs and pseudonyms are keyed hashes: re-sealed while both keys are known.
        reseal(db, before, ring, SystemClock())


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
    resumed = len(current.key_ids) > 1 or current.previous_hmac_key is not None
    ring = current if resumed else current.with_new_active_key(new_hmac=new_hmac)
    old_ids = tuple(k for k in ring.key_ids if k != ring.active_key_id)
    if not resumed:
        # The file keeps the old HMAC key too until the end: the audit chain is sealed
        # with it, and a run stopped before the re-seal must still be able to redo it.
        write_key_file(key_file, ring, replace=True)
    if ring.previous_hmac_key is not None:
        _reseal_audit(db, ring)
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
