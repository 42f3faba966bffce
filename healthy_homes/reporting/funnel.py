"""The funnel per practice, register and month, counted by SQL aggregates.

A row's month is the month (UTC) its flags were raised: every later stage of a flag
(shown, offered, consented, sent, accepted, outcome) counts against that month, so
each stage is a subset of the one before and the conversion rates are true rates.
``eligible`` is the register's size as the month's last sync counted it. A flag raised
for several registers counts once in each, and once in the ``*`` (all registers) row.
Time to acknowledgement is from sending to the housing side's first acknowledging
status (nearest-rank median and 90th percentile, whole seconds); for the services named
in ``receipt_acknowledges`` (``receipt_is_acknowledgement``) their system's receipt
(``received``) counts too, as it does for the closed loop's deadline.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql import Select
from sqlmodel import col

from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentDecision,
    ConsentRecord,
    FlagEvent,
    FlagRecord,
    Referral,
)
from healthy_homes.store.reporting_models import (
    ANY_REGISTER,
    FlagRegister,
    ReferralStatusEvent,
    RegisterCount,
)

#: Statuses that show a person on the housing side acted (as referrals/loop.py counts them).
ACKNOWLEDGED = (
    "accepted",
    "rejected",
    "ready",
    "in-progress",
    "on-hold",
    "completed",
    "failed",
    "cancelled",
)
#: The housing team took the referral on (``failed``: took it on, could not finish).
ACCEPTED = ("accepted", "in-progress", "on-hold", "completed", "failed")
#: The housing team recorded how it ended.
OUTCOME = ("completed", "failed")
STAGES = (
    "eligible",
    "flagged",
    "shown",
    "offered",
    "consented",
    "declined",
    "not_appropriate",
    "dismissed",
    "sent",
    "accepted",
    "outcome",
)
#: Conversion rates shown: (name, numerator stage, denominator stage).
RATES = (
    ("flagged/eligible", "flagged", "eligible"),
    ("shown/flagged", "shown", "flagged"),
    ("offered/shown", "offered", "shown"),
    ("consented/offered", "consented", "offered"),
    ("sent/consented", "sent", "consented"),
    ("accepted/sent", "accepted", "sent"),
    ("outcome/accepted", "outcome", "accepted"),
)

Filters = list[ColumnElement[bool]]
Query = Select[*tuple[Any, ...]]


@dataclass
class FunnelRow:
    """One practice, register (``*`` for all) and month."""

    practice: str
    register: str
    month: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    acknowledged: int = 0
    ack_median_s: int | None = None
    ack_p90_s: int | None = None

    def rate(self, numerator: str, denominator: str) -> float | None:
        """numerator / denominator, or None when nothing reached the denominator."""
        below = self.counts[denominator]
        return self.counts[numerator] / below if below else None

    @property
    def key(self) -> tuple[str, str, str]:
        """(practice, register, month)."""
        return (self.practice, self.register, self.month)


def _month(column: Any, dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.round(func.extract("epoch", later - earlier)), Integer)
    return cast(func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0), Integer)


def _flag_has_event(kind: str) -> ColumnElement[bool]:
    return exists().where(col(FlagEvent.flag_id) == col(FlagRecord.id), col(FlagEvent.kind) == kind)


def _flag_has_consent(decision: str | None = None) -> ColumnElement[bool]:
    query = exists().where(col(ConsentRecord.flag_id) == col(FlagRecord.id))
    return query.where(col(ConsentRecord.decision) == decision) if decision else query


def _flag_has_referral_status(statuses: tuple[str, ...]) -> ColumnElement[bool]:
    event = exists().where(
        col(ReferralStatusEvent.referral_id) == col(Referral.id),
        col(ReferralStatusEvent.status).in_(statuses),
    )
    return exists().where(
        col(Referral.flag_id) == col(FlagRecord.id),
        or_(event, col(Referral.task_status).in_(statuses)),
    )


def _one(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _per_flag(dialect: str, by_register: bool, where: Filters) -> Query:
    """One row per flag (and register): its keys and a 0/1 for each stage it reached."""
    register: Any = col(FlagRegister.register_name) if by_register else literal(ANY_REGISTER)
    consented = _flag_has_consent(ConsentDecision.GIVEN.value)
    sent = exists().where(
        col(Referral.flag_id) == col(FlagRecord.id), col(Referral.sent_at).is_not(None)
    )
    query = select(
        FlagRecord.practice_ods.label("practice"),  # type: ignore[attr-defined]
        register.label("register"),
        _month(col(FlagRecord.created_at), dialect).label("month"),
        _one(_flag_has_event("shown")).label("shown"),
        _one(_flag_has_consent()).label("offered"),
        _one(consented).label("consented"),
        _one(and_(_flag_has_consent(ConsentDecision.DECLINED.value), ~consented)).label("declined"),
        _one(_flag_has_event("not-appropriate")).label("not_appropriate"),
        _one(_flag_has_event("dismissed")).label("dismissed"),
        _one(sent).label("sent"),
        _one(_flag_has_referral_status(ACCEPTED)).label("accepted"),
        _one(_flag_has_referral_status(OUTCOME)).label("outcome"),
    ).where(*where)
    if by_register:
        query = query.join(FlagRegister, col(FlagRegister.flag_id) == col(FlagRecord.id))
    return query


def _stage_counts(dialect: str, by_register: bool, where: Filters) -> Query:
    flags = _per_flag(dialect, by_register, where).subquery()
    stages = [s for s in STAGES if s not in ("eligible", "flagged")]
    return select(
        flags.c.practice,
        flags.c.register,
        flags.c.month,
        func.count().label("flagged"),
        *[func.sum(flags.c[s]).label(s) for s in stages],
    ).group_by(flags.c.practice, flags.c.register, flags.c.month)


def _acknowledging(receipt_acknowledges: Collection[str]) -> ColumnElement[bool]:
    """An event that acknowledges its referral (a receipt only for the services named)."""
    by_person = col(ReferralStatusEvent.status).in_(ACKNOWLEDGED)
    if not receipt_acknowledges:
        return by_person
    receipt = exists().where(
        col(Referral.id) == col(ReferralStatusEvent.referral_id),
        col(Referral.housing_service_id).in_(sorted(receipt_acknowledges)),
    )
    return or_(by_person, and_(col(ReferralStatusEvent.status) == "received", receipt))


def _ack_times(
    dialect: str, by_register: bool, where: Filters, receipt_acknowledges: Collection[str]
) -> Query:
    """Median and p90 seconds from sending to the first acknowledging status."""
    first_ack = (
        select(
            ReferralStatusEvent.referral_id.label("referral_id"),  # type: ignore[attr-defined]
            func.min(ReferralStatusEvent.at).label("at"),
        )
        .where(_acknowledging(receipt_acknowledges))
        .group_by(col(ReferralStatusEvent.referral_id))
        .subquery()
    )
    register: Any = col(FlagRegister.register_name) if by_register else literal(ANY_REGISTER)
    timed = (
        select(
            FlagRecord.practice_ods.label("practice"),  # type: ignore[attr-defined]
            register.label("register"),
            _month(col(FlagRecord.created_at), dialect).label("month"),
            _seconds(first_ack.c.at, col(Referral.sent_at), dialect).label("secs"),
        )
        .join(Referral, col(Referral.flag_id) == col(FlagRecord.id))
        .join(first_ack, first_ack.c.referral_id == col(Referral.id))
        .where(col(Referral.sent_at).is_not(None), *where)
    )
    if by_register:
        timed = timed.join(FlagRegister, col(FlagRegister.flag_id) == col(FlagRecord.id))
    inner = timed.subquery()
    keys = (inner.c.practice, inner.c.register, inner.c.month)
    ranked = select(
        *keys,
        inner.c.secs,
        func.row_number().over(partition_by=keys, order_by=inner.c.secs).label("rn"),
        func.count().over(partition_by=keys).label("n"),
    ).subquery()
    return select(
        ranked.c.practice,
        ranked.c.register,
        ranked.c.month,
        func.max(ranked.c.n).label("n"),
        func.max(case((ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.secs))).label("median"),
        func.max(case((ranked.c.rn == (ranked.c.n * 9 + 9) // 10, ranked.c.secs))).label("p90"),
    ).group_by(ranked.c.practice, ranked.c.register, ranked.c.month)


def receipt_acknowledging(services: Iterable[HousingServiceConfig]) -> frozenset[str]:
    """Ids of the services whose system's receipt counts as acknowledgement."""
    return frozenset(s.id for s in services if s.receipt_is_acknowledgement)


def month_key(day: date) -> str:
    """``YYYY-MM`` of a date."""
    return f"{day.year:04d}-{day.month:02d}"


def funnel(
    db: Database,
    *,
    start: date,
    end: date,
    practices: list[str] | None = None,
    receipt_acknowledges: Collection[str] = (),
) -> list[FunnelRow]:
    """Funnel rows for flags raised from ``start``'s month to ``end``'s month inclusive.

    ``receipt_acknowledges``: ids of the housing services whose receipt counts as
    acknowledgement (:func:`receipt_acknowledging` reads them from the settings).
    """
    dialect = db.engine.dialect.name
    first, last = month_key(start), month_key(end)
    month = _month(col(FlagRecord.created_at), dialect)
    where: list[ColumnElement[bool]] = [month >= first, month <= last]
    counts_where: list[ColumnElement[bool]] = [
        col(RegisterCount.month) >= first,
        col(RegisterCount.month) <= last,
    ]
    if practices:
        where.append(col(FlagRecord.practice_ods).in_(practices))
        counts_where.append(col(RegisterCount.practice_ods).in_(practices))
    rows: dict[tuple[str, str, str], FunnelRow] = {}

    def row(practice: str, register: str, month: str) -> FunnelRow:
        return rows.setdefault((practice, register, month), FunnelRow(practice, register, month))

    with db.engine.connect() as conn:
        for counted in conn.execute(
            select(  # type: ignore[call-overload]
                RegisterCount.practice_ods,
                RegisterCount.register_name,
                RegisterCount.month,
                RegisterCount.patients,
            ).where(*counts_where)
        ):
            row(counted[0], counted[1], counted[2]).counts["eligible"] = int(counted[3])
        for by_register in (True, False):
            for found in conn.execute(_stage_counts(dialect, by_register, where)).mappings():
                target = row(found["practice"], found["register"], found["month"])
                for stage in STAGES[1:]:
                    target.counts[stage] = int(found[stage] or 0)
            timings = _ack_times(dialect, by_register, where, receipt_acknowledges)
            for timed in conn.execute(timings).mappings():
                target = row(timed["practice"], timed["register"], timed["month"])
                target.acknowledged = int(timed["n"])
                target.ack_median_s, target.ack_p90_s = timed["median"], timed["p90"]
    return [rows[k] for k in sorted(rows)]
