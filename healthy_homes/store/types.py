"""Column types shared by the tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from healthy_homes.crypto import decrypt, encrypt

_T = TypeVar("_T")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone support, so values come back naive; we store UTC and
    re-attach the zone on the way out so comparisons never mix naive and aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Sealed(TypeDecorator[_T]):
    """Bytes sealed with the process keyring, bound to ``table.column`` (the AAD).

    Encryption happens on the way in and decryption on the way out, so code above the
    store sees plain values; the database, its dumps and its WAL see only ciphertext.
    Such a column cannot be searched or compared in SQL: look values up by keyed hash.
    """

    impl = LargeBinary
    cache_ok = True

    def __init__(self, aad: str) -> None:
        super().__init__()
        self.aad = aad
        self._aad = aad.encode("ascii")

    def _seal(self, plaintext: bytes) -> bytes:
        return encrypt(plaintext, aad=self._aad)

    def _open(self, stored: Any) -> bytes:
        return decrypt(bytes(stored), aad=self._aad)


class EncryptedText(Sealed[str]):
    """Text stored as AES-256-GCM ciphertext."""

    cache_ok = True  # SQLAlchemy reads it from each class itself, not from the base

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else self._seal(value.encode("utf-8"))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self._open(value).decode("utf-8")


class EncryptedJSON(Sealed[Any]):
    """A JSON document stored as AES-256-GCM ciphertext."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return self._seal(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(self._open(value))
