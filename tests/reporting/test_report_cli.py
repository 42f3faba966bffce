"""``report funnel``: the CSV says what funnel() says; the chart files are real SVG and PNG."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.reporting.export import HEADER, TABLE_COLUMNS, cells
from healthy_homes.reporting.funnel import funnel
from healthy_homes.store.db import Database
from tests.reporting.simulate import Simulation


@pytest.fixture
async def simulated(tmp_path: Path, housing_db: Database) -> Path:
    """January and early February at two practices on SQLite; a config pointing at the store."""
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    db.upgrade()
    await Simulation(db, housing_db, practices=2, seed=11).run(days=40)
    db.dispose()
    path = tmp_path / "healthy-homes.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "hh.db"}"\n')
    return path


def test_csv_rows_are_the_funnel_and_the_chart_is_drawn(
    simulated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["report", "funnel", "--config", str(simulated), "--from", "2026-01-01"]
    chart = tmp_path / "funnel.svg"
    assert main([*args, "--to", "2026-02-28", "--format", "csv", "--chart", str(chart)]) == 0
    printed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    db = Database(f"sqlite:///{tmp_path / 'hh.db'}")
    try:
        expected = funnel(db, start=date(2026, 1, 1), end=date(2026, 2, 28))
        only_one = funnel(db, start=date(2026, 1, 1), end=date(2026, 1, 31), practices=["S00001"])
    finally:
        db.dispose()
    assert printed[0] == HEADER
    assert printed[1:] == [cells(r) for r in expected]
    assert any(int(row[HEADER.index("consented")]) > 0 for row in printed[1:])
    svg = chart.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "consented" in svg

    png = tmp_path / "funnel.png"
    one = [*args, "--to", "2026-01-31", "--practice", "S00001", "--chart", str(png)]
    assert main(one) == 0
    lines = capsys.readouterr().out.splitlines()
    # Columns are split on runs of spaces, so an empty last cell (no acknowledgement that
    # month, hence no median) would vanish: the counts before it are never empty.
    table = [re.split(r"\s{2,}", line.strip()) for line in lines]
    table = [row + [""] * (len(TABLE_COLUMNS) - len(row)) for row in table]
    picked = [HEADER.index(c) for c in TABLE_COLUMNS]
    assert table[0] == [c.replace("_", " ") for c in TABLE_COLUMNS]
    assert table[1:] == [[cells(r)[i] for i in picked] for r in only_one]
    assert only_one and {r.practice for r in only_one} == {"S00001"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "healthy-homes.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "hh.db"}"\n')
    base = ["report", "funnel", "--config", str(config)]
    assert main([*base, "--from", "2026-03-01", "--to", "2026-01-01"]) == 2
    assert main([*base, "--from", "2026-01-01", "--to", "2026-02-01", "--chart", "x.gif"]) == 2
