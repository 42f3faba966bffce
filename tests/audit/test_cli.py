"""'healthy-homes audit verify|export': exit codes, the first bad entry, round-trip exports."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from healthy_homes.audit.export import read_export
from healthy_homes.audit.verify import iter_entries, verify_entries
from healthy_homes.cli import main
from healthy_homes.clock import FixedClock
from healthy_homes.store.db import Database
from tests.audit.test_chain import append, drop_triggers


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HEALTHY_HOMES__STORAGE__URL", url)
    monkeypatch.chdir(tmp_path)
    db = Database(url)
    db.upgrade()
    append(db, FixedClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC)), 4)
    return db


def test_verify_passes_then_names_the_first_bad_entry(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "intact" in out and "4 entries" in out
    head = out.strip().rsplit("head ", 1)[1]
    assert main(["audit", "verify", "--expect", head]) == 0
    assert main(["audit", "verify", "--expect", "2:" + "f" * 64]) == 1
    drop_triggers(sqlite_db)
    with sqlite_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET role = 'admin' WHERE seq = 2"))
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert "at entry 2" in capsys.readouterr().err


def test_editing_the_sqlite_file_bytes_is_detected(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_db.dispose()
    with sqlite_db.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    sqlite_db.dispose()
    path = tmp_path / "cli.db"
    data = path.read_bytes()
    # Same length, so the page stays valid: only the audit row's text changes.
    assert data.count(b"u-clin-1") == 4
    path.write_bytes(data.replace(b"u-clin-1", b"u-clin-9", 1))
    assert main(["audit", "verify"]) == 1
    assert "FAILED" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trips_and_verifies(
    sqlite_db: Database, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"audit.{fmt}"
    assert main(["audit", "export", "--format", fmt, "--out", str(out)]) == 0
    with sqlite_db.session() as session:
        stored = list(iter_entries(session))
    with out.open(encoding="utf-8", newline="") as source:
        exported = list(read_export(source, fmt))  # type: ignore[arg-type]
    assert len(exported) == 4
    for db_row, file_row in zip(stored, exported, strict=True):
        assert {**db_row, "at": db_row["at"].isoformat()} == file_row
    assert verify_entries(exported).ok
    assert main(["audit", "verify", "--file", str(out)]) == 0
    # An export edited afterwards no longer verifies.
    if fmt == "jsonl":
        lines = out.read_text().splitlines()
        row = json.loads(lines[1])
        row["actor"] = "someone-else"
        lines[1] = json.dumps(row)
        out.write_text("\n".join(lines) + "\n")
    else:
        with out.open(newline="") as source:
            rows = list(csv.DictReader(source))
        rows[1]["actor"] = "someone-else"
        with out.open("w", newline="") as sink:
            writer = csv.DictWriter(sink, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    capsys.readouterr()
    assert main(["audit", "verify", "--file", str(out)]) == 1
    assert "at entry 2" in capsys.readouterr().err
