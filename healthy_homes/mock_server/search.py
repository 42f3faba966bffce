"""Run a parsed query against the store as of a snapshot, one page at a time.

A page is found by walking the most selective index list (or the type's list) in
sequence order from a cursor, so paging is keyset paging on ``(lastUpdated, id)``
over a frozen snapshot: writes made while a client pages are invisible to that
paging session and nothing is skipped or repeated.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthy_homes.mock_server.fhirdates import range_matches
from healthy_homes.mock_server.params import (
    date_values,
    reference_values,
    string_values,
    token_values,
)
from healthy_homes.mock_server.query import Criterion, Query, parse_query
from healthy_homes.mock_server.store import MockStore, Version

JSON = dict[str, Any]


@dataclass(slots=True)
class Page:
    """One page of results."""

    matches: list[Version]
    includes: list[Version] = field(default_factory=list)
    next_cursor: int | None = None
    total: int | None = None


class _Lazy:
    """Decode a version's JSON at most once, and only if a criterion needs it."""

    __slots__ = ("_res", "version")

    def __init__(self, version: Version) -> None:
        self.version = version
        self._res: JSON | None = None

    @property
    def res(self) -> JSON:
        if self._res is None:
            self._res = self.version.resource()
        return self._res


def _matches_one(item: _Lazy, crit: Criterion) -> bool:
    v = item.version
    if crit.kind == "_id":
        return v.id in crit.values
    if crit.kind == "_lastUpdated":
        point = (v.ts, v.ts + 1)
        return any(range_matches(p, r, point) for p, r in crit.dates)
    param = crit.param
    assert param is not None
    if crit.modifier == "missing":
        present = next(iter(_values(item.res, crit)), None) is not None
        return present is (crit.values[0] == "false")
    if crit.kind == "token":
        found = list(token_values(item.res, param))
        hit = any(_token_hit(t, found) for t in crit.tokens)
        return not hit if crit.modifier == "not" else hit
    if crit.kind in ("reference", "chain"):
        return any(r in crit.refs for r in reference_values(item.res, param))
    if crit.kind == "date":
        ranges = list(date_values(item.res, param))
        return any(range_matches(p, r, t) for p, r in crit.dates for t in ranges)
    strings = list(string_values(item.res, param))
    if crit.modifier == "exact":
        return any(s in crit.values for s in strings)
    folded = [s.casefold() for s in strings]
    if crit.modifier == "contains":
        return any(q in s for q in crit.values for s in folded)
    return any(s.startswith(q) for q in crit.values for s in folded)


def _values(res: JSON, crit: Criterion) -> Iterator[Any]:
    assert crit.param is not None
    fn = {
        "token": token_values,
        "reference": reference_values,
        "date": date_values,
        "string": string_values,
    }[crit.param.type]
    return iter(fn(res, crit.param))


def _token_hit(
    wanted: tuple[str | None, str | None, bool], found: list[tuple[str | None, str]]
) -> bool:
    system, code, system_given = wanted
    for fs, fc in found:
        if code is not None and fc != code:
            continue
        if system_given and fs != system:
            continue
        return True
    return False


def _resolve_chains(store: MockStore, query: Query, snapshot: int) -> list[Criterion]:
    """Turn each chained criterion into a reference criterion over matching targets."""
    out = []
    for crit in query.criteria:
        if crit.kind == "chain":
            refs: set[str] = set()
            for target, inner in crit.chain:
                sub = Query(target, [inner], count=0)
                refs.update(v.reference for v in _iter_matches(store, sub, [inner], snapshot))
            crit = Criterion(crit.name, "chain", crit.param, None, crit.values, refs=refs)
        out.append(crit)
    return out


def _driver(
    store: MockStore, type_: str, criteria: list[Criterion], snapshot: int
) -> Sequence[int]:
    """The smallest ascending list of candidate sequence numbers."""
    best: Sequence[int] | None = None
    for crit in criteria:
        lists: list[Sequence[int]] | None = None
        if crit.kind == "_id":
            seqs = []
            for id_ in crit.values:
                found = store.version_at(type_, id_, snapshot)
                if found is not None:
                    seqs.append(found.seq)
            lists = [sorted(seqs)]
        elif crit.modifier is None and crit.param is not None:
            index = crit.param.paths
            if crit.kind == "token" and all(code is not None for _, code, _ in crit.tokens):
                lists = [store.lookup(type_, index, code) for _, code, _ in crit.tokens if code]
            elif crit.kind in ("reference", "chain"):
                lists = [store.lookup(type_, index, ref) for ref in crit.refs]
        if lists is None:
            continue
        merged: Sequence[int] = lists[0] if len(lists) == 1 else sorted(set().union(*lists))
        if best is None or len(merged) < len(best):
            best = merged
    return best if best is not None else store.type_seqs(type_)


def _lower_ts(criteria: list[Criterion]) -> int | None:
    """A lower bound on lastUpdated implied by ``_lastUpdated`` criteria, if any."""
    bound: int | None = None
    for crit in criteria:
        if crit.kind != "_lastUpdated":
            continue
        lows = []
        for prefix, (lo, hi) in crit.dates:
            if prefix in ("gt", "sa"):
                lows.append(hi)
            elif prefix in ("ge", "eq"):
                lows.append(lo)
            else:
                lows = []
                break
        if lows:
            bound = max(bound or min(lows), min(lows))
    return bound


def _iter_matches(
    store: MockStore,
    query: Query,
    criteria: list[Criterion],
    snapshot: int,
    cursor: int | None = None,
) -> Iterator[Version]:
    """Matching live versions as of ``snapshot`` in sort order, after ``cursor``."""
    driver = _driver(store, query.type, criteria, snapshot)
    if query.descending:
        i = bisect.bisect_right(driver, snapshot) - 1
        if cursor is not None:
            i = min(i, bisect.bisect_left(driver, cursor) - 1)
        step = -1
    else:
        i = 0
        if cursor is not None:
            i = bisect.bisect_right(driver, cursor)
        low = _lower_ts(criteria)
        if low is not None:
            i = max(i, bisect.bisect_left(driver, store.first_seq_at_or_after(low)))
        step = 1
    n = len(driver)
    while 0 <= i < n:
        seq = driver[i]
        i += step
        if seq > snapshot:
            break  # ascending lists only grow past the snapshot
        version = store.record(seq)
        if version.type != query.type or not version.visible_at(snapshot):
            continue
        item = _Lazy(version)
        if all(_matches_one(item, c) for c in criteria):
            yield version


def run_page(
    store: MockStore,
    query: Query,
    *,
    snapshot: int,
    cursor: int | None = None,
    want_total: bool = False,
) -> Page:
    """The page of ``query.count`` matches after ``cursor``, with includes and total."""
    with store.lock:
        criteria = _resolve_chains(store, query, snapshot)
        matches: list[Version] = []
        more = False
        for version in _iter_matches(store, query, criteria, snapshot, cursor):
            if len(matches) >= query.count:
                more = True
                break
            matches.append(version)
        page = Page(matches)
        if more and matches:
            page.next_cursor = matches[-1].seq
        if want_total:
            page.total = sum(1 for _ in _iter_matches(store, query, criteria, snapshot))
        elif cursor is None and not more:
            page.total = len(matches)
        page.includes = _includes(store, query, matches, snapshot)
    return page


def _includes(
    store: MockStore, query: Query, matches: list[Version], snapshot: int
) -> list[Version]:
    if not query.includes:
        return []
    seen = {v.reference for v in matches}
    out = []
    for version in matches:
        resource = version.resource()
        for inc in query.includes:
            targets = (inc.target,) if inc.target else inc.param.targets
            for ref in reference_values(resource, inc.param):
                type_, _, id_ = ref.partition("/")
                if ref in seen or type_ not in targets or "/" in id_:
                    continue
                found = store.version_at(type_, id_, snapshot)
                if found is not None:
                    seen.add(ref)
                    out.append(found)
    return out


def find(
    store: MockStore, type_: str, pairs: list[tuple[str, str]], base_url: str
) -> list[Version]:
    """Every current match of a search (for conditional create and references)."""
    query = parse_query(type_, pairs, base_url=base_url)
    with store.lock:
        snapshot = store.snapshot()
        criteria = _resolve_chains(store, query, snapshot)
        return list(_iter_matches(store, query, criteria, snapshot))
