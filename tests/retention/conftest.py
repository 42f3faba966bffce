"""Retention tests: a migrated database on each backend (the audit tests' fixture)."""

from tests.audit.conftest import db  # noqa: F401
from tests.store.conftest import migrated_db, postgres_url  # noqa: F401
