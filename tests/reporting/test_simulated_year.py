"""Acceptance: the report of a simulated year equals the simulation's own tally."""

from __future__ import annotations

from datetime import date

from healthy_homes.reporting.funnel import STAGES, funnel
from healthy_homes.store.db import Database
from tests.reporting.simulate import Simulation, Tally


def _nearest_rank(values: list[int], share: float) -> int:
    ordered = sorted(values)
    rank = -(-len(ordered) * int(share * 10) // 10)  # ceil, in integers as the SQL does
    return ordered[max(rank, 1) - 1]


def _compare(db: Database, tally: Tally) -> None:
    rows = funnel(db, start=date(2026, 1, 1), end=date(2026, 12, 31))
    reported = {
        (r.practice, r.register, r.month, stage): r.counts[stage]
        for r in rows
        for stage in STAGES
        if r.counts[stage]
    }
    expected = {k: v for k, v in tally.counts.items() if v}
    assert reported == expected
    timed = {r.key: (r.acknowledged, r.ack_median_s, r.ack_p90_s) for r in rows if r.acknowledged}
    assert timed == {
        key: (len(secs), _nearest_rank(secs, 0.5), _nearest_rank(secs, 0.9))
        for key, secs in tally.ack_seconds.items()
    }


async def test_a_simulated_year_at_three_practices_matches_the_report(
    backend: Database, housing_db: Database
) -> None:
    tally = await Simulation(backend, housing_db, practices=3, seed=2026).run(days=365)
    stages = {stage for (_, _, _, stage), n in tally.counts.items() if n}
    assert stages == set(STAGES)  # every stage happened, so every stage is checked
    months = {month for (_, _, month, stage) in tally.counts if stage == "flagged"}
    assert len(months) == 12
    _compare(backend, tally)
