"""The funnel as a chart: monthly counts of each stage, all registers together.

matplotlib's ``Figure`` used directly, never ``pyplot``: no display and no global state,
so pages can draw charts from several threads; SVG or PNG by file extension.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure

from healthy_homes.errors import ConfigError
from healthy_homes.reporting.funnel import FunnelRow
from healthy_homes.store.reporting_models import ANY_REGISTER

CHARTED = ("flagged", "shown", "offered", "consented", "sent", "accepted", "outcome")
FORMATS = ("svg", "png")


def monthly_totals(rows: Iterable[FunnelRow]) -> dict[str, dict[str, int]]:
    """Per stage, per month: the all-registers counts summed over the practices shown."""
    totals: dict[str, dict[str, int]] = {s: defaultdict(int) for s in CHARTED}
    for row in rows:
        if row.register != ANY_REGISTER:
            continue
        for stage in CHARTED:
            totals[stage][row.month] += row.counts[stage]
    return totals


def render_chart(rows: Iterable[FunnelRow], fmt: str, title: str = "Healthy Homes funnel") -> bytes:
    """The chart as SVG or PNG bytes."""
    if fmt not in FORMATS:
        raise ConfigError(f"chart format must be one of {', '.join(FORMATS)}")
    totals = monthly_totals(rows)
    months = sorted({m for by_month in totals.values() for m in by_month})
    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.subplots()
    for stage in CHARTED:
        axes.plot(months, [totals[stage].get(m, 0) for m in months], marker="o", label=stage)
    axes.set_title(title)
    axes.set_xlabel("month the flags were raised")
    axes.set_ylabel("flags reaching the stage")
    axes.legend(loc="upper right", fontsize="small")
    axes.tick_params(axis="x", labelrotation=45)
    figure.tight_layout()
    out = io.BytesIO()
    # A fixed date in SVG metadata keeps the output the same for the same figures.
    metadata = {"Date": None} if fmt == "svg" else {}
    figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def write_chart(rows: Iterable[FunnelRow], path: Path) -> None:
    """Write the chart to ``path`` (its extension picks SVG or PNG)."""
    path.write_bytes(render_chart(rows, path.suffix.lower().lstrip(".")))
