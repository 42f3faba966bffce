"""Parse a FHIR search query string into criteria and result controls.

Strict by default: an unknown parameter, modifier, prefix or control value is a 400,
never silently ignored. With ``Prefer: handling=lenient`` such parameters are dropped
and listed in :attr:`Query.ignored` so the Bundle can say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from healthy_homes.mock_server.fhirdates import DateFormatError, parse_range, split_prefix
from healthy_homes.mock_server.params import SEARCH_PARAMS, SearchParam, normalise_reference

DEFAULT_COUNT = 50
MAX_COUNT = 1000

_CONTROLS = frozenset(
    {"_count", "_sort", "_total", "_elements", "_include", "_summary", "_format", "_pretty"}
)
_SORTS = {"_lastUpdated": False, "-_lastUpdated": True}
_MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"not", "missing"}),
    "reference": frozenset({"missing"}),
    "date": frozenset({"missing"}),
    "string": frozenset({"exact", "contains", "missing"}),
}


class QueryError(ValueError):
    """The query cannot be run; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Criterion:
    """One search parameter occurrence: its values are OR-ed, criteria are AND-ed."""

    name: str
    kind: Literal["_id", "_lastUpdated", "token", "reference", "date", "string", "chain"]
    param: SearchParam | None
    modifier: str | None
    values: list[str]
    dates: list[tuple[str, tuple[int, int]]] = field(default_factory=list)
    tokens: list[tuple[str | None, str | None, bool]] = field(default_factory=list)
    refs: set[str] = field(default_factory=set)
    chain: list[tuple[str, Criterion]] = field(default_factory=list)


@dataclass(slots=True)
class Include:
    """An ``_include=Type:param[:target]``."""

    param: SearchParam
    target: str | None
    text: str


@dataclass(slots=True)
class Query:
    """A parsed search of one resource type."""

    type: str
    criteria: list[Criterion]
    count: int = DEFAULT_COUNT
    descending: bool = False
    total: Literal["default", "none", "estimate", "accurate"] = "default"
    elements: tuple[str, ...] | None = None
    includes: list[Include] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)


def _split_values(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    out, current, escaped = [], [], False
    for ch in raw:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _token(value: str) -> tuple[str | None, str | None, bool]:
    """``(system, code, system_given)``: ``s|c``, ``|c`` (no system), ``s|``, ``c``."""
    if "|" not in value:
        return None, value, False
    system, code = value.split("|", 1)
    return (system or None), (code or None), True


def _criterion(type_: str, name: str, modifier: str | None, raw: str, base_url: str) -> Criterion:
    values = _split_values(raw)
    if name == "_id":
        if modifier:
            raise QueryError(f"modifier :{modifier} is not supported on _id")
        return Criterion(name, "_id", None, None, values)
    if name == "_lastUpdated":
        if modifier:
            raise QueryError(f"modifier :{modifier} is not supported on _lastUpdated")
        return Criterion(name, "_lastUpdated", None, None, values, dates=_dates(values))
    param = SEARCH_PARAMS[type_].get(name)
    if param is None:
        raise QueryError(f"unknown search parameter {name!r} for {type_}")
    target_type: str | None = None
    if modifier and param.type == "reference" and modifier in param.targets:
        target_type, modifier = modifier, None
    if modifier and modifier not in _MODIFIERS[param.type]:
        raise QueryError(f"modifier :{modifier} is not supported on {type_}.{name}")
    crit = Criterion(name, param.type, param, modifier, values)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise QueryError(f"{name}:missing takes true or false")
        return crit
    if param.type == "date":
        crit.dates = _dates(values)
    elif param.type == "token":
        crit.tokens = [_token(v) for v in values]
    elif param.type == "reference":
        for value in values:
            ref = normalise_reference(value, base_url)
            if "/" in ref and not ref.startswith(("http://", "https://", "urn:")):
                if ref.split("/", 1)[0] not in param.targets:
                    raise QueryError(f"{type_}.{name} cannot point at {ref.split('/', 1)[0]}")
                crit.refs.add(ref)
            elif "/" in ref:
                crit.refs.add(ref)
            else:
                crit.refs.update(f"{t}/{ref}" for t in (target_type,) if t)
                if target_type is None:
                    crit.refs.update(f"{t}/{ref}" for t in param.targets)
    elif param.type == "string":
        crit.values = [v.casefold() for v in values] if modifier != "exact" else values
    return crit


def _dates(values: list[str]) -> list[tuple[str, tuple[int, int]]]:
    out = []
    for value in values:
        prefix, text = split_prefix(value)
        try:
            out.append((prefix, parse_range(text)))
        except DateFormatError as exc:
            raise QueryError(str(exc)) from exc
    return out


def _chain(type_: str, name: str, raw: str, base_url: str) -> Criterion:
    head, _, tail = name.partition(".")
    ref_name, _, target = head.partition(":")
    param = SEARCH_PARAMS[type_].get(ref_name)
    if param is None or param.type != "reference":
        raise QueryError(f"cannot chain through {type_}.{ref_name}: not a reference parameter")
    types = (target,) if target else param.targets
    if target and target not in param.targets:
        raise QueryError(f"{type_}.{ref_name} cannot point at {target}")
    if "." in tail:
        raise QueryError("only one level of chaining is supported")
    tail_name, _, tail_mod = tail.partition(":")
    usable = [t for t in types if t in SEARCH_PARAMS and tail_name in SEARCH_PARAMS[t]]
    if not usable:
        raise QueryError(f"no target of {type_}.{ref_name} has a search parameter {tail_name!r}")
    crit = Criterion(name, "chain", param, None, [raw])
    crit.chain = [(t, _criterion(t, tail_name, tail_mod or None, raw, base_url)) for t in usable]
    return crit


def parse_query(
    type_: str, pairs: list[tuple[str, str]], *, base_url: str, lenient: bool = False
) -> Query:
    """Parse ``pairs`` (name, value) of a search on ``type_``; raise QueryError."""
    query = Query(type_, [], pairs=list(pairs))
    for key, raw in pairs:
        try:
            if key in _CONTROLS:
                _control(query, key, raw)
                continue
            if "." in key:
                query.criteria.append(_chain(type_, key, raw, base_url))
                continue
            name, _, modifier = key.partition(":")
            query.criteria.append(_criterion(type_, name, modifier or None, raw, base_url))
        except QueryError:
            if not lenient:
                raise
            query.ignored.append(key)
    return query


def _control(query: Query, key: str, raw: str) -> None:
    if key == "_count":
        if not raw.isdigit():
            raise QueryError("_count must be a non-negative integer")
        query.count = min(int(raw), MAX_COUNT)
    elif key == "_sort":
        if raw not in _SORTS:
            raise QueryError(f"_sort={raw} is not supported (only _lastUpdated, -_lastUpdated)")
        query.descending = _SORTS[raw]
    elif key == "_total":
        if raw not in ("none", "estimate", "accurate"):
            raise QueryError("_total must be none, estimate or accurate")
        query.total = raw  # type: ignore[assignment]
    elif key == "_elements":
        query.elements = tuple(e.strip() for e in raw.split(",") if e.strip())
    elif key == "_summary":
        if raw == "count":
            query.count = 0
            query.total = "accurate"
        elif raw != "false":
            raise QueryError(f"_summary={raw} is not supported (only count, false)")
    elif key == "_format":
        if "json" not in raw:
            raise QueryError(f"_format={raw} is not supported; this server speaks JSON", 406)
    elif key == "_include":
        query.includes.append(_include(query.type, raw))


def _include(type_: str, raw: str) -> Include:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] != type_:
        raise QueryError(f"_include={raw}: expected {type_}:param[:Target]")
    param = SEARCH_PARAMS[type_].get(parts[1])
    if param is None or param.type != "reference":
        raise QueryError(f"_include={raw}: {parts[1]!r} is not a reference parameter of {type_}")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in param.targets:
        raise QueryError(f"_include={raw}: {type_}.{parts[1]} cannot point at {target}")
    return Include(param, target, raw)
