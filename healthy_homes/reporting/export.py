"""The funnel as CSV (one row per practice, register and month) and as a text table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from healthy_homes.reporting.funnel import RATES, STAGES, FunnelRow
from healthy_homes.store.reporting_models import ANY_REGISTER

HEADER = [
    "practice",
    "register",
    "month",
    *STAGES,
    *[name for name, _, _ in RATES],
    "acknowledged",
    "ack_median_hours",
    "ack_p90_hours",
]


def register_label(name: str) -> str:
    """How a register is named in reports (``*`` is every register together)."""
    return "all registers" if name == ANY_REGISTER else name


def _hours(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.1f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def cells(row: FunnelRow) -> list[str]:
    """A row's values in HEADER order, as text."""
    return [
        row.practice,
        register_label(row.register),
        row.month,
        *[str(row.counts[s]) for s in STAGES],
        *[_rate(row.rate(top, bottom)) for _, top, bottom in RATES],
        str(row.acknowledged),
        _hours(row.ack_median_s),
        _hours(row.ack_p90_s),
    ]


def to_csv(rows: Iterable[FunnelRow]) -> str:
    """CSV text with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(cells(r) for r in rows)
    return out.getvalue()


TABLE_COLUMNS = ("practice", "register", "month", *STAGES, "ack_median_hours")


def to_table(rows: Iterable[FunnelRow]) -> str:
    """A fixed-width table of counts (rates are in the CSV)."""
    picked = [HEADER.index(c) for c in TABLE_COLUMNS]
    lines = [[c.replace("_", " ") for c in TABLE_COLUMNS]]
    lines += [[cells(r)[i] for i in picked] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS))]
    return (
        "\n".join(
            "  ".join(
                v.ljust(w) if i < 3 else v.rjust(w)
                for i, (v, w) in enumerate(zip(line, widths, strict=True))
            )
            for line in lines
        )
        + "\n"
    )
