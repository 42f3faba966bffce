"""Migration 0011: the reporting tables, backfilled from flag.registers, and back down."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from healthy_homes.store.db import Database, alembic_config, current_revision
from tests.store.migration_checks import drift, round_trip, table_names

TABLES = {"flag_register", "referral_status_event", "register_count"}


def test_upgrade_backfills_each_flag_s_registers_and_downgrade_removes_the_tables(
    backend: Database,
) -> None:
    when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def flags_at_0010() -> None:
        with backend.engine.begin() as conn:
            for flag_id, registers in (("f1", '["copd", "asthma"]'), ("f2", '["falls"]')):
                conn.execute(
                    text(
                        "INSERT INTO flag (id, practice_ods, patient_id, registers, reasons, "
                        "rule_set_version, status, created_at, updated_at, priority) VALUES "
                        "(:id, 'A12345', :pid, :registers, '[]', 't', 'raised', :at, :at, 0)"
                    ),
                    {"id": flag_id, "pid": f"p-{flag_id}", "registers": registers, "at": when},
                )

    round_trip(backend, "0010", tables=TABLES, between=flags_at_0010)
    assert current_revision(backend.engine) is not None
    with backend.engine.connect() as conn:
        rows = set(
            conn.execute(text("SELECT flag_id, register_name, practice_ods FROM flag_register"))
        )
    assert rows == {("f1", "copd", "A12345"), ("f1", "asthma", "A12345"), ("f2", "falls", "A12345")}
    command.downgrade(alembic_config(backend.engine), "0010")
    assert not TABLES & table_names(backend)


def test_the_reporting_tables_and_indexes_match_the_models(backend: Database) -> None:
    ours = TABLES | {"ix_consent_flag_id", "ix_referral_flag_id"}
    assert drift(backend, lambda change: any(name in repr(change) for name in ours)) == []
    indexes = {i["name"] for i in inspect(backend.engine).get_indexes("consent")}
    assert "ix_consent_flag_id" in indexes
