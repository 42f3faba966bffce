"""FHIR date, dateTime and instant values as half-open ranges of UTC microseconds.

Search compares ranges, not points: ``2024-05`` means the whole of May, and a
resource's ``2024-05-03`` overlaps it (https://hl7.org/fhir/R4/search.html#date).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -(2**62)
MAX_US = 2**62

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class DateFormatError(ValueError):
    """A value is not a FHIR date, dateTime or instant."""


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


_second_text: tuple[int, str] = (-1, "")


def format_instant(us: int) -> str:
    """A FHIR instant with microseconds, in UTC (``...T10:00:00.000001Z``)."""
    global _second_text
    second, micro = divmod(us, 1_000_000)
    cached = _second_text  # writes come in bursts within one second: reuse its text
    if cached[0] != second:
        cached = (second, from_us(second * 1_000_000).strftime("%Y-%m-%dT%H:%M:%S"))
        _second_text = cached  # one tuple, replaced whole: safe across threads
    return f"{cached[1]}.{micro:06d}Z"


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def parse_range(value: str) -> tuple[int, int]:
    """The half-open range ``[lo, hi)`` in UTC microseconds that ``value`` denotes."""
    match = _DATE_RE.match(value.strip())
    if match is None:
        raise DateFormatError(f"not a FHIR date/dateTime: {value!r}")
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            return to_us(datetime(year, 1, 1, tzinfo=UTC)), to_us(
                datetime(year + 1, 1, 1, tzinfo=UTC)
            )
        month = int(g["m"])
        if g["d"] is None:
            ny, nm = _add_months(year, month, 1)
            return to_us(datetime(year, month, 1, tzinfo=UTC)), to_us(
                datetime(ny, nm, 1, tzinfo=UTC)
            )
        day = int(g["d"])
        if g["H"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            return to_us(start), to_us(start + timedelta(days=1))
        tz: tzinfo = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        second = int(g["S"]) if g["S"] is not None else 0
        fraction = g["f"] or ""
        micro = int((fraction + "000000")[:6]) if fraction else 0
        start = datetime(year, month, day, int(g["H"]), int(g["M"]), second, micro, tzinfo=tz)
    except ValueError as exc:
        raise DateFormatError(f"not a valid date: {value!r}") from exc
    if g["S"] is None:
        width = timedelta(minutes=1)
    elif not fraction:
        width = timedelta(seconds=1)
    else:
        width = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    return to_us(start), to_us(start + width)


def date_range(day: date) -> tuple[int, int]:
    """The range of one calendar day in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return to_us(start), to_us(start + timedelta(days=1))


PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def split_prefix(value: str) -> tuple[str, str]:
    """Split ``ge2024-01-01`` into ``("ge", "2024-01-01")``; no prefix means ``eq``."""
    if len(value) > 2 and value[:2] in PREFIXES and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def range_matches(prefix: str, search: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether a target range satisfies ``prefix search`` (FHIR R4 search semantics)."""
    slo, shi = search
    tlo, thi = target
    inside = tlo >= slo and thi <= shi
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return not inside
    if prefix == "gt":
        return thi > shi
    if prefix == "lt":
        return tlo < slo
    if prefix == "ge":
        return thi > shi or inside
    if prefix == "le":
        return tlo < slo or inside
    if prefix == "sa":
        return tlo >= shi
    if prefix == "eb":
        return thi <= slo
    raise ValueError(prefix)
