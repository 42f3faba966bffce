"""AES-256-GCM envelopes, keyed hashes and the key file: clear errors, never plaintext."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from healthy_homes.config.security import SecurityConfig
from healthy_homes.crypto import (
    KeyRing,
    decrypt,
    encrypt,
    get_keyring,
    keyed_hash,
    keyring_from_config,
    load_key_file,
    security_from_environment,
    set_keyring,
    write_key_file,
)
from healthy_homes.errors import (
    KeyFilePermissionError,
    KeyMissingError,
    TamperedDataError,
    UnknownKeyError,
)

AAD = b"referral.dataset"


def test_round_trip_with_random_nonce_and_key_id_in_envelope() -> None:
    ring = KeyRing.generate("k1")
    one = ring.encrypt(b"Ada Lovelace", aad=AAD)
    two = ring.encrypt(b"Ada Lovelace", aad=AAD)
    assert one != two  # a fresh nonce each time
    assert b"Ada" not in one
    assert ring.key_id_of(one) == "k1"
    assert ring.decrypt(one, aad=AAD) == b"Ada Lovelace"


def test_ciphertext_cannot_move_between_columns() -> None:
    ring = KeyRing.generate("k1")
    sealed = ring.encrypt(b"9990000018", aad=b"referral.dataset")
    with pytest.raises(TamperedDataError, match=r"housing_referral\.dataset"):
        ring.decrypt(sealed, aad=b"housing_referral.dataset")


def test_a_changed_byte_is_detected() -> None:
    ring = KeyRing.generate("k1")
    sealed = bytearray(ring.encrypt(b"Flat 2, 1 High Street", aad=AAD))
    sealed[-1] ^= 1
    with pytest.raises(TamperedDataError):
        ring.decrypt(bytes(sealed), aad=AAD)
    with pytest.raises(TamperedDataError, match="truncated"):
        ring.decrypt(bytes(sealed[:10]), aad=AAD)
    with pytest.raises(TamperedDataError, match="not a Healthy Homes ciphertext"):
        ring.decrypt(b'{"nhs_number": "9990000018"}', aad=AAD)


def test_unknown_key_id_is_named() -> None:
    old = KeyRing.generate("old")
    sealed = old.encrypt(b"x", aad=AAD)
    with pytest.raises(UnknownKeyError, match="'old'"):
        KeyRing.generate("new").decrypt(sealed, aad=AAD)


def test_rotation_keeps_old_keys_for_reading_until_dropped() -> None:
    old = KeyRing.generate("old")
    sealed = old.encrypt(b"x", aad=AAD)
    rotated = old.with_new_active_key("new")
    assert rotated.active_key_id == "new" and set(rotated.key_ids) == {"old", "new"}
    assert rotated.decrypt(sealed, aad=AAD) == b"x"
    assert rotated.key_id_of(rotated.encrypt(b"x", aad=AAD)) == "new"
    with pytest.raises(UnknownKeyError):
        rotated.only_active().decrypt(sealed, aad=AAD)
    assert rotated.keyed_hash("nhs-number", "9990000018") != old.keyed_hash(
        "nhs-number", "9990000018"
    )


def test_keyed_hash_is_stable_keyed_and_purpose_separated() -> None:
    ring = KeyRing({"k1": bytes(32)}, "k1", bytes(range(32)))
    digest = ring.keyed_hash("nhs-number", "9990000018")
    assert digest == ring.keyed_hash("nhs-number", "9990000018")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != ring.keyed_hash("patient-pseudonym", "9990000018")
    assert digest != KeyRing({"k1": bytes(32)}, "k1", bytes(32)).keyed_hash(
        "nhs-number", "9990000018"
    )
    assert "9990000018" not in digest


def test_bad_keys_are_refused_with_the_reason() -> None:
    with pytest.raises(KeyMissingError, match="AES-256 needs 32"):
        KeyRing({"k1": bytes(16)}, "k1", bytes(32))
    with pytest.raises(KeyMissingError, match="active key 'k2'"):
        KeyRing({"k1": bytes(32)}, "k2", bytes(32))
    with pytest.raises(KeyMissingError, match="HMAC key"):
        KeyRing({"k1": bytes(32)}, "k1", bytes(8))


def test_key_file_round_trip_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing.generate("k1").with_new_active_key("k2")
    write_key_file(path, ring)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_key_file(path)
    assert loaded.active_key_id == "k2" and set(loaded.key_ids) == {"k1", "k2"}
    sealed = ring.encrypt(b"x", aad=AAD)
    assert loaded.decrypt(sealed, aad=AAD) == b"x"
    assert loaded.keyed_hash("p", "v") == ring.keyed_hash("p", "v")
    with pytest.raises(KeyMissingError, match="already exists"):
        write_key_file(path, ring)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, KeyRing.generate())
    os.chmod(path, 0o644)
    with pytest.raises(KeyFilePermissionError, match=r"0644.*0600"):
        load_key_file(path)


def test_missing_or_malformed_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyMissingError, match="not found"):
        load_key_file(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    bad.chmod(0o600)
    with pytest.raises(KeyMissingError, match="not JSON"):
        load_key_file(bad)
    bad.write_text(json.dumps({"active_key": "k1"}))
    with pytest.raises(KeyMissingError, match="not a key file"):
        load_key_file(bad)


def test_no_keys_configured_is_an_error_not_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyMissingError, match="no encryption keys configured"):
        keyring_from_config(SecurityConfig())
    for name in list(os.environ):
        if name.startswith("HEALTHY_HOMES__SECURITY__"):
            monkeypatch.delenv(name)
    set_keyring(None)
    with pytest.raises(KeyMissingError):
        encrypt(b"x", aad=AAD)
    with pytest.raises(KeyMissingError):
        keyed_hash("nhs-number", "9990000018")


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "HEALTHY_HOMES__SECURITY__ACTIVE_KEY": "e1",
        "HEALTHY_HOMES__SECURITY__DATA_KEYS": json.dumps({"e1": "A" * 43 + "="}),
        "HEALTHY_HOMES__SECURITY__HMAC_KEY": "B" * 43 + "=",
    }
    ring = keyring_from_config(security_from_environment(env))
    assert ring.active_key_id == "e1"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    set_keyring(None)
    assert get_keyring().active_key_id == "e1"  # a worker process with only the environment
    assert decrypt(encrypt(b"x", aad=AAD), aad=AAD) == b"x"
    with pytest.raises(KeyMissingError, match=r"HMAC_KEY|hmac_key"):
        security_from_environment({k: v for k, v in env.items() if "HMAC" not in k})


def test_process_keyring_is_the_installed_one() -> None:
    ring = KeyRing.generate("mine")
    set_keyring(ring)
    assert get_keyring() is ring
    assert keyed_hash("p", "v") == ring.keyed_hash("p", "v")


def test_crypto_is_a_bottom_layer() -> None:
    import ast

    allowed = {"config", "errors", "crypto"}
    package = Path(__file__).resolve().parents[2] / "healthy_homes" / "crypto"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("healthy_homes"):
                assert (node.module or "").split(".")[1] in allowed, f"{path.name}: {node.module}"
