"""``healthy-homes report``: the funnel (table, CSV, chart) and the capacity estimate.

The reports' modules (and matplotlib, for the chart) are imported by the handlers: every
command's parser is built from this module.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings
from healthy_homes.errors import ConfigError

if TYPE_CHECKING:
    from healthy_homes.reporting.capacity import ServiceVerdict
    from healthy_homes.store.db import Database


def _db(url: str) -> Database:
    from healthy_homes.store.db import Database

    db = Database(url)
    db.upgrade()
    return db


def _funnel(args: argparse.Namespace) -> int:
    from healthy_homes.reporting.export import to_csv, to_table
    from healthy_homes.reporting.funnel import funnel, receipt_acknowledging

    settings = resolve_settings(args.config)
    if args.start > args.end:
        raise ConfigError("--from must not be after --to")
    if args.chart is not None:
        # Only a chart needs matplotlib (imported by the chart module).
        from healthy_homes.reporting.chart import FORMATS

        if args.chart.suffix.lower().lstrip(".") not in FORMATS:
            raise ConfigError("--chart must end in .svg or .png")
    db = _db(settings.storage.url)
    try:
        rows = funnel(
            db,
            start=args.start,
            end=args.end,
            practices=args.practice or None,
            receipt_acknowledges=receipt_acknowledging(settings.housing_services),
        )
    finally:
        db.dispose()
    text = to_csv(rows) if args.format == "csv" else to_table(rows)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    if args.chart is not None:
        from healthy_homes.reporting.chart import write_chart

        write_chart(rows, args.chart)
    return 0


def _verdict_lines(verdict: ServiceVerdict, cap: int) -> list[str]:
    lines = [f"Housing service {verdict.service}:"]
    for load in verdict.practices:
        lines.append(
            f"  {load.practice}: {load.patients} on the flagged registers, {load.seen:.1f} seen "
            f"a week, {load.prompts:.1f} prompts, {load.discussions:.1f} discussions, "
            f"{load.referrals:.2f} referrals a week ({load.referrals_later:.2f} once everyone "
            "has been asked)"
        )
    total = f"{verdict.referrals:.1f} referrals a week expected"
    if verdict.capacity is None:
        lines.append(f"  {total}; capacity not known (set [reporting] housing_capacity_per_week)")
    elif not verdict.swamped:
        lines.append(f"  {total} against a capacity of {verdict.capacity}: fits.")
    else:
        lines.append(f"  {total} against a capacity of {verdict.capacity}: WOULD SWAMP THE TEAM.")
        if verdict.fitting_cap:
            lines.append(
                f"  Fits with [flags] max_new_flags_per_day = {verdict.fitting_cap} "
                f"(now {cap}), or keep throttle_on_capacity = true so flags stop when the "
                "team says it is full."
            )
        else:
            lines.append(
                "  Even one new flag a day per practice is too many: narrow [flags] registers "
                "or the age band, or go live at fewer practices first."
            )
    return lines


def _capacity(args: argparse.Namespace) -> int:
    from healthy_homes.reporting.capacity import (
        capacities_of,
        estimate,
        register_sizes,
        services_of,
    )

    settings = resolve_settings(args.config)
    db = _db(settings.storage.url)
    try:
        sizes = register_sizes(db, settings)
        capacities = capacities_of(db, settings)
    finally:
        db.dispose()
    for item in args.patients or []:
        practice, _, count = item.partition("=")
        if practice not in sizes or not count.isdigit():
            raise ConfigError(f"--patients wants PRACTICE=N for a configured practice: {item!r}")
        sizes[practice] = int(count)
    assumptions = settings.reporting
    if args.referral_rate is not None:
        assumptions = assumptions.model_copy(update={"discussed_to_referred": args.referral_rate})
    verdicts = estimate(sizes, services_of(settings), capacities, settings.flags, assumptions)
    print(
        f"Assumptions: {assumptions.appointment_rate_per_week:.0%} of register patients seen a "
        f"week; {assumptions.shown_to_discussed:.0%} of prompts discussed; "
        f"{assumptions.discussed_to_referred:.1%} of discussions referred; at most "
        f"{settings.flags.max_new_flags_per_day} new flags a day per practice."
    )
    for verdict in verdicts:
        print("\n".join(_verdict_lines(verdict, settings.flags.max_new_flags_per_day)))
    return 1 if any(v.swamped for v in verdicts) else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report funnel|capacity``."""
    parser = subparsers.add_parser(
        "report",
        help="the referral funnel (table, CSV, chart) and the capacity estimate",
        description="Reports for practice and housing leads. Counts only: no patient is named.",
    )
    commands = parser.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    fun = commands.add_parser(
        "funnel",
        help="eligible, flagged, shown, offered, consented, sent, accepted, outcome by month",
        description="The funnel per practice, register and month the flags were raised, "
        "with conversion rates (CSV) and time to acknowledgement.",
    )
    add_config_argument(fun)
    fun.add_argument(
        "--from",
        dest="start",
        type=date.fromisoformat,
        required=True,
        help="first month (any date in it, YYYY-MM-DD)",
    )
    fun.add_argument(
        "--to",
        dest="end",
        type=date.fromisoformat,
        required=True,
        help="last month (any date in it, YYYY-MM-DD)",
    )
    fun.add_argument("--practice", action="append", help="only this ODS code (repeatable)")
    fun.add_argument("--format", choices=("table", "csv"), default="table", help="table or csv")
    fun.add_argument("--out", type=Path, help="write the table or CSV here (default: stdout)")
    fun.add_argument("--chart", type=Path, help="also draw the chart to this .svg or .png file")
    fun.set_defaults(handler=_funnel)

    cap = commands.add_parser(
        "capacity",
        help="before go-live: expected flags and referrals a week against housing capacity",
        description="From register sizes in the store (after 'sync --once'), the [reporting] "
        "assumptions and [flags] cap, per housing service. Exits 1 if the referrals would "
        "exceed a team's weekly capacity, and says what daily cap would fit.",
    )
    add_config_argument(cap)
    cap.add_argument(
        "--patients",
        action="append",
        metavar="PRACTICE=N",
        help="register size to assume for a practice (instead of the store's)",
    )
    cap.add_argument(
        "--referral-rate",
        type=float,
        help="share of discussions referred (default [reporting], pilot 0.04)",
    )
    cap.set_defaults(handler=_capacity)
