"""Migration 0007 encrypts existing rows in place and its downgrade decrypts them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from healthy_homes.crypto import KeyRing, set_keyring
from healthy_homes.errors import UnknownKeyError
from healthy_homes.store.db import Database, alembic_config
from healthy_homes.store.lookups import housing_referrals_by_nhs_number, nhs_number_hash
from healthy_homes.store.types import EncryptedJSON, EncryptedText
from tests.conftest import test_keyring
from tests.store.conftest import migrated_db  # noqa: F401  (shared fixture)
from tests.store.migration_checks import drift

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DATASET = {
    "nhs_number": "9990000018",
    "given_name": "Ada",
    "family_name": "Testpatient",
    "address_lines": ["12 Synthetic Row"],
    "postcode": "NE25 9ZZ",
    "phone": "07700 900123",
}
PLAINTEXT = ["9990000018", "Testpatient", "Synthetic Row", "NE25 9ZZ", "07700 900123"]
TEXTS = {
    ("flag", "outcome_reason"): "Testpatient prefers a letter",
    ("consent", "reason"): "Testpatient declined today",
    ("consent", "withdrawal_reason"): "Testpatient changed mind",
    ("referral", "cancel_reason"): "Testpatient moved house",
    ("flag_event", "reason"): "Testpatient not well enough",
    ("housing_referral", "status_reason"): "Testpatient phoned back",
    ("housing_activity", "text"): "Visited Testpatient at 12 Synthetic Row",
}
JSONS = {
    ("referral", "dataset"): DATASET,
    ("housing_referral", "dataset"): DATASET,
    ("housing_referral", "consent"): {"note": "Testpatient said yes"},
}
IDS = {
    "flag": "f1",
    "consent": "c1",
    "referral": "r1",
    "flag_event": "e1",
    "housing_team": "team-a",
    "housing_referral": "h1",
    "housing_activity": "a1",
}


def _filler(column: dict[str, Any]) -> Any:
    kind = column["type"]
    if isinstance(kind, sa.DateTime):
        return WHEN
    if isinstance(kind, sa.Integer):
        return 0
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.JSON):
        return []
    return "x"


def _seed(conn: sa.Connection) -> None:
    """One row per table at revision 0006, plaintext where 0007 will encrypt."""
    inspector = sa.inspect(conn)
    links = {
        "flag_id": "f1",
        "consent_id": "c1",
        "team_id": "team-a",
        "referral_id": "h1",
    }
    for table, row_id in IDS.items():
        columns = inspector.get_columns(table)
        values: dict[str, Any] = {}
        for column in columns:
            name = column["name"]
            if name == "id":
                values[name] = row_id
            elif name in links:
                values[name] = links[name]
            elif (table, name) in TEXTS:
                values[name] = TEXTS[(table, name)]
            elif (table, name) in JSONS:
                values[name] = JSONS[(table, name)]
            elif not column["nullable"]:
                values[name] = _filler(column)
        shaped = sa.table(table, *(sa.column(c["name"], c["type"]) for c in columns))
        conn.execute(sa.insert(shaped).values(values))


def _raw(conn: sa.Connection, table: str, column: str) -> Any:
    return conn.execute(sa.text(f'SELECT "{column}" FROM "{table}"')).scalar_one()


def _check(db: Database) -> None:
    cfg = alembic_config(db.engine)
    command.upgrade(cfg, "0006")
    with db.engine.begin() as conn:
        _seed(conn)
    command.upgrade(cfg, "0007")
    with db.engine.connect() as conn:
        for (table, column), text in TEXTS.items():
            raw = bytes(_raw(conn, table, column))
            assert text.encode() not in raw and b"Testpatient" not in raw
            sealed = sa.table(table, sa.column(column, EncryptedText(f"{table}.{column}")))
            assert conn.execute(sa.select(sealed.c[column])).scalar_one() == text
        for (table, column), document in JSONS.items():
            raw = bytes(_raw(conn, table, column))
            assert not any(p.encode() in raw for p in PLAINTEXT)
            sealed = sa.table(table, sa.column(column, EncryptedJSON(f"{table}.{column}")))
            assert conn.execute(sa.select(sealed.c[column])).scalar_one() == document
        for table in ("referral", "housing_referral"):
            assert _raw(conn, table, "nhs_number_hash") == nhs_number_hash("999 000 0018")
    with db.session() as session:
        [found] = housing_referrals_by_nhs_number(session, "999 000 0018")
        assert found.id == "h1"
    # The rows were sealed with the installed keyring: a different one cannot read them.
    set_keyring(KeyRing.generate("other"))
    sealed = sa.table("referral", sa.column("dataset", EncryptedJSON("referral.dataset")))
    with db.engine.connect() as conn, pytest.raises(UnknownKeyError):
        conn.execute(sa.select(sealed.c.dataset)).scalar_one()


def _downgrade_restores_plaintext(db: Database, ring: KeyRing) -> None:
    set_keyring(ring)
    command.downgrade(alembic_config(db.engine), "0006")
    inspector = sa.inspect(db.engine)
    assert "nhs_number_hash" not in {c["name"] for c in inspector.get_columns("referral")}
    with db.engine.connect() as conn:
        for (table, column), text in TEXTS.items():
            assert _raw(conn, table, column) == text
        for (table, column), document in JSONS.items():
            shaped = sa.table(table, sa.column(column, sa.JSON()))
            assert conn.execute(sa.select(shaped.c[column])).scalar_one() == document
        [nullable] = [c for c in inspector.get_columns("housing_activity") if c["name"] == "text"]
        assert nullable["nullable"] is False


def test_sqlite_rows_encrypted_and_decrypted(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    _check(db)
    _downgrade_restores_plaintext(db, test_keyring())
    db.dispose()


@pytest.mark.postgres
def test_postgres_rows_encrypted_and_decrypted(postgres_url: str) -> None:
    db = Database(postgres_url)
    _check(db)
    _downgrade_restores_plaintext(db, test_keyring())
    db.dispose()


MINE = {
    ("flag", "outcome_reason"),
    ("consent", "reason"),
    ("consent", "withdrawal_reason"),
    ("referral", "dataset"),
    ("referral", "cancel_reason"),
    ("referral", "nhs_number_hash"),
    ("flag_event", "reason"),
    ("housing_referral", "dataset"),
    ("housing_referral", "consent"),
    ("housing_referral", "status_reason"),
    ("housing_referral", "nhs_number_hash"),
    ("housing_activity", "text"),
}


def _touches_mine(diff: Any) -> bool:
    text = repr(diff)
    return any(f"'{t}'" in text and f"'{c}'" in text for t, c in MINE) or "nhs_number_hash" in text


def test_models_and_migration_agree(migrated_db: Database) -> None:  # noqa: F811
    assert drift(migrated_db, _touches_mine) == []
