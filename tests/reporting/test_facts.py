"""The facts are recorded where they happen: a real sync counts the registers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from healthy_homes.cli import main
from healthy_homes.registers.membership import distinct_members, register_counts
from healthy_homes.store.db import Database
from healthy_homes.store.reporting_models import ANY_REGISTER, RegisterCount
from tests.connector.helpers import practice_server


def test_a_sync_records_this_month_s_register_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = practice_server(patients=200, seed=3)
    config = tmp_path / "healthy-homes.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "hh.db"}"\n'
        f'[[practices]]\nods_code = "A12345"\nname = "Test Surgery"\n'
        f'fhir_base_url = "{server.base_url}"\n'
    )
    try:
        assert main(["sync", "--once", "--config", str(config)]) == 0
        assert main(["sync", "--once", "--config", str(config)]) == 0  # same month: one row each
    finally:
        server.stop()
    capsys.readouterr()
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    try:
        with db.session() as session:
            expected = register_counts(session, "A12345")
            expected[ANY_REGISTER] = distinct_members(session, "A12345")
            rows = session.exec(select(RegisterCount)).all()
    finally:
        db.dispose()
    assert expected["copd"] > 0 and expected[ANY_REGISTER] > 0
    assert len({r.month for r in rows}) == 1
    assert {r.register_name: r.patients for r in rows} == expected
    assert len(rows) == len(expected)
