"""'keys rotate': every record readable with the new keyring, none with the old key alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from healthy_homes.audit import verify_log
from healthy_homes.audit.reseal import reseal
from healthy_homes.cli import main
from healthy_homes.clock import FixedClock
from healthy_homes.crypto import KeyRing, load_key_file, set_keyring, write_key_file
from healthy_homes.errors import CryptoError, UnknownKeyError
from healthy_homes.keys import rotation
from healthy_homes.store.db import Database
from healthy_homes.store.lookups import (
    housing_referrals_by_nhs_number,
    nhs_number_hash,
    referrals_by_nhs_number,
)
from healthy_homes.store.models import (
    ConsentRecord,
    FlagEvent,
    FlagRecord,
    HousingActivity,
    HousingReferral,
    Referral,
)
from healthy_homes.store.rekey import sealed_columns
from healthy_homes.store.types import EncryptedText
from tests.audit.test_chain import append
from tests.crypto.seed import WHEN, dataset, nhs, seed

PATIENTS = 5  # with --batch-size 2: several batches per table, one of them short
MODELS = (FlagRecord, FlagEvent, ConsentRecord, Referral, HousingReferral, HousingActivity)


def _snapshot(db: Database) -> dict[str, list[dict[str, object]]]:
    """Every row of every table with an encrypted column, decrypted (hashes left out: they
    change with the HMAC key, and are checked on their own)."""
    with db.session() as session:
        return {
            model.__name__: sorted(
                (
                    row.model_dump(exclude={"nhs_number_hash"})
                    for row in session.exec(sa.select(model)).scalars()
                ),
                key=lambda r: str(r["id"]),
            )
            for model in MODELS
        }


def _raw_values(db: Database) -> list[tuple[str, bytes, bytes]]:
    values = []
    with db.engine.connect() as conn:
        for table, column, aad in sealed_columns():
            query = sa.select(sa.type_coerce(column, sa.LargeBinary())).where(column.is_not(None))
            values += [
                (f"{table.name}.{column.name}", bytes(v), aad) for (v,) in conn.execute(query)
            ]
    return values


def _configure(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    for name in ("ACTIVE_KEY", "DATA_KEYS", "HMAC_KEY"):
        monkeypatch.delenv(f"HEALTHY_HOMES__SECURITY__{name}")
    key_file = tmp_path / "keys.json"
    config = tmp_path / "healthy-homes.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n\n[security]\nkey_file = "{key_file}"\n')
    return key_file, config


def _rotation(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file, config = _configure(tmp_path, url, monkeypatch)
    old = KeyRing.generate("old1")
    write_key_file(key_file, old)
    db = Database(url, keyring=old)
    db.upgrade()
    seed(db, PATIENTS)
    before = _snapshot(db)
    old_hashes = {r.id: r.nhs_number_hash for r in before_rows(db)}
    assert {aad for _, _, aad in _raw_values(db)} >= {b"referral.dataset", b"housing_activity.text"}

    assert main(["keys", "rotate", "--config", str(config), "--batch-size", "2"]) == 0

    new = load_key_file(key_file)
    assert new.key_ids == (new.active_key_id,) and "old1" not in new.key_ids
    # Every record readable with the new keyring alone...
    set_keyring(new)
    assert _snapshot(db) == before
    raw = _raw_values(db)
    assert raw and all(new.key_id_of(value) == new.active_key_id for _, value, _ in raw)
    # ...and the lookups hash with the new HMAC key.
    with db.session() as session:
        for n in range(PATIENTS):
            [referral] = referrals_by_nhs_number(session, nhs(n))
            assert referral.dataset == dataset(n)
            assert referral.nhs_number_hash != old_hashes[referral.id]
            assert housing_referrals_by_nhs_number(session, nhs(n))[0].id == f"h{n}"
    # None readable with the old key alone: decryption fails for every value.
    for name, value, aad in raw:
        with pytest.raises(UnknownKeyError):
            old.decrypt(value, aad=aad)
        forged = KeyRing({new.active_key_id: old.data_key("old1")}, new.active_key_id, bytes(32))
        with pytest.raises(Exception, match="failed authentication"):
            forged.decrypt(value, aad=aad)  # the old key under the new id fails too
    set_keyring(old)
    with pytest.raises(UnknownKeyError), db.session() as session:
        session.exec(sa.select(Referral)).all()
    with db.session() as session:
        assert not referrals_by_nhs_number(session, nhs(0))  # old HMAC key finds nothing
    db.dispose()


def before_rows(db: Database) -> list[Referral]:
    with db.session() as session:
        return list(session.exec(sa.select(Referral)).scalars())


def test_rotate_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rotation(f"sqlite:///{tmp_path / 'rot.db'}", tmp_path, monkeypatch)


@pytest.mark.postgres
def test_rotate_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotation(postgres_url, tmp_path, monkeypatch)


def test_interrupted_rotation_is_finished_by_running_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    key_file, config = _configure(tmp_path, url, monkeypatch)
    old = KeyRing.generate("old1")
    db = Database(url, keyring=old)
    db.upgrade()
    seed(db, 2)
    before = _snapshot(db)
    # As if a rotation stopped right after writing the new key into the file.
    write_key_file(key_file, old.with_new_active_key("new1"))
    assert main(["keys", "rotate", "--config", str(config)]) == 0
    assert "finished the interrupted rotation" in capsys.readouterr().out
    ring = load_key_file(key_file)
    assert ring.key_ids == ("new1",)
    set_keyring(ring)
    assert _snapshot(db) == before
    db.dispose()


def test_rotate_refuses_inline_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "healthy-homes.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "x.db"}"\n')
    assert main(["keys", "rotate", "--config", str(config)]) == 2
    assert "needs [security] key_file" in capsys.readouterr().err


def test_create_keyring_writes_a_usable_0600_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k.json"
    assert main(["keys", "create-keyring", "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert f'key_file = "{out}"' in capsys.readouterr().out
    ring = load_key_file(out)
    assert ring.decrypt(ring.encrypt(b"x", aad=b"t.c"), aad=b"t.c") == b"x"
    assert main(["keys", "create-keyring", "--out", str(out)]) == 2  # never overwritten
    assert nhs_number_hash("9990000018")  # the test keyring is still installed


def test_commands_refuse_to_open_the_database_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file, config = _configure(tmp_path, f"sqlite:///{tmp_path / 'k.db'}", monkeypatch)
    set_keyring(None)
    assert main(["db", "upgrade", "--config", str(config)]) == 2
    assert "key file" in capsys.readouterr().err and not (tmp_path / "k.db").exists()
    write_key_file(key_file, KeyRing.generate())
    key_file.chmod(0o640)
    assert main(["db", "upgrade", "--config", str(config)]) == 2
    assert "must be 0600" in capsys.readouterr().err
    key_file.chmod(0o600)
    assert main(["db", "upgrade", "--config", str(config)]) == 0


def test_a_write_under_the_old_key_during_rotation_keeps_every_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    key_file, _config = _configure(tmp_path, url, monkeypatch)
    old = KeyRing.generate("old1")
    write_key_file(key_file, old)
    db = Database(url, keyring=old)
    db.upgrade()
    seed(db, 2)
    real_rehash = rotation.rehash

    def rehash_while_a_stale_process_writes(engine: sa.Engine, **kwargs: int) -> object:
        # A connector still running on the old key file writes one value meanwhile.
        set_keyring(old)
        column = sa.column("outcome_reason", EncryptedText("flag.outcome_reason"))
        with engine.begin() as conn:
            conn.execute(sa.table("flag", column).update().values(outcome_reason="late"))
        set_keyring(load_key_file(key_file))
        return real_rehash(engine, **kwargs)

    monkeypatch.setattr(rotation, "rehash", rehash_while_a_stale_process_writes)
    with pytest.raises(CryptoError, match=r"flag\.outcome_reason \(2\)"):
        rotation.rotate(db, key_file)
    kept = load_key_file(key_file)
    assert set(kept.key_ids) == {"old1", kept.active_key_id}  # the old key was not dropped
    set_keyring(kept)
    assert _snapshot(db)["FlagRecord"][0]["outcome_reason"] == "late"
    db.dispose()


@pytest.mark.parametrize("stopped", ["before the audit re-seal", "after the audit re-seal"])
def test_a_rotation_stopped_midway_still_leaves_the_audit_log_verifiable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped: str
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    key_file, config = _configure(tmp_path, url, monkeypatch)
    old = KeyRing.generate("old1")
    db = Database(url, keyring=old)
    db.upgrade()
    seed(db, 2)
    append(db, FixedClock(WHEN), 3)
    # The first run wrote the new key file (old HMAC key kept) and then stopped.
    midway = old.with_new_active_key("new1")
    write_key_file(key_file, midway)
    assert load_key_file(key_file).previous_hmac_key == old.hmac_key
    if stopped == "after the audit re-seal":
        reseal(db, old, midway, FixedClock(WHEN))
    assert main(["keys", "rotate", "--config", str(config)]) == 0
    final = load_key_file(key_file)
    assert final.key_ids == ("new1",) and final.previous_hmac_key is None
    assert final.hmac_key == midway.hmac_key
    with db.session() as session:
        result = verify_log(session, final)
    assert result.ok and result.entries == 4  # one keys.rotated entry: re-sealed exactly once
    db.dispose()
