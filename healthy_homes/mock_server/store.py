"""In-memory, thread-safe, versioned FHIR resource store with full history.

Every write gets a global sequence number and a ``meta.lastUpdated`` strictly later
than every earlier write (one microsecond later when the clock stands still), so
sequence order *is* ``_lastUpdated`` order. Old versions are kept: they serve vread
and let a paged search read the store as of the snapshot taken at its first page.

Resources are kept as compact JSON bytes (a million patients fit in memory); token
and reference values are indexed per resource type, and every index list is in
ascending sequence order because writes only ever append.
"""

from __future__ import annotations

import bisect
import gc
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from healthy_homes.clock import Clock, SystemClock
from healthy_homes.mock_server import jsonio
from healthy_homes.mock_server.fhirdates import format_instant, to_us
from healthy_homes.mock_server.params import IndexName, index_keys

JSON = dict[str, Any]
WriteListener = Callable[["Version"], None]

__all__ = [
    "MockStore",
    "ResourceGone",
    "ResourceNotFound",
    "StoreError",
    "Version",
    "VersionConflict",
]


class StoreError(Exception):
    """A store operation cannot be done; ``status`` is the HTTP status to answer."""

    status = 400


class ResourceNotFound(StoreError):
    """No such resource (or version)."""

    status = 404


class ResourceGone(StoreError):
    """The resource was deleted."""

    status = 410


class VersionConflict(StoreError):
    """``If-Match`` named a version that is not the current one."""

    status = 412


class Version:
    """One stored version of one resource."""

    __slots__ = ("body", "deleted", "id", "next_seq", "prev", "seq", "ts", "type", "version")

    def __init__(
        self,
        seq: int,
        type_: str,
        id_: str,
        version: int,
        ts: int,
        body: bytes,
        deleted: bool,
        prev: Version | None,
    ) -> None:
        self.seq = seq
        self.type = type_
        self.id = id_
        self.version = version
        self.ts = ts
        self.body = body
        self.deleted = deleted
        self.prev = prev
        self.next_seq: int | None = None

    @property
    def etag(self) -> str:
        """The weak ETag of this version, ``W/"3"``."""
        return f'W/"{self.version}"'

    @property
    def last_updated(self) -> str:
        """``meta.lastUpdated`` as a FHIR instant."""
        return format_instant(self.ts)

    @property
    def reference(self) -> str:
        """``Type/id``."""
        return f"{self.type}/{self.id}"

    def resource(self) -> JSON:
        """A fresh decoded copy of the resource."""
        data: JSON = jsonio.loads(self.body)
        return data

    def visible_at(self, snapshot: int) -> bool:
        """Whether this is the live, undeleted version as of ``snapshot``."""
        return (
            self.seq <= snapshot
            and not self.deleted
            and (self.next_seq is None or self.next_seq > snapshot)
        )


def parse_etag(value: str | int) -> int | None:
    """The version number in ``W/"3"``, ``"3"`` or ``3``; None if unparseable."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    return int(text) if text.isdigit() else None


class MockStore:
    """Versioned resources, indexes, and a monotonic write clock; one lock for all."""

    def __init__(
        self, clock: Clock | None = None, *, id_factory: Callable[[], str] | None = None
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self._new_id = id_factory or (lambda: str(uuid.uuid4()))
        self._records: list[Version] = []
        self._by_type: dict[str, list[int]] = {}
        self._current: dict[str, dict[str, Version]] = {}
        self._index: dict[tuple[str, IndexName], dict[str, int | list[int]]] = {}
        self._last_ts = -1
        self._listeners: list[WriteListener] = []

    # -- writing -----------------------------------------------------------------

    def add_listener(self, listener: WriteListener) -> None:
        """Call ``listener(version)`` after every write (hook for timelines, faults)."""
        self._listeners.append(listener)

    def _stamp(self) -> int:
        ts = max(to_us(self.clock.now()), self._last_ts + 1)
        self._last_ts = ts
        return ts

    def _write(self, resource: JSON | None, type_: str, id_: str, deleted: bool = False) -> Version:
        prev = self._current.setdefault(type_, {}).get(id_)
        seq = len(self._records)
        ts = self._stamp()
        number = prev.version + 1 if prev is not None else 1
        body = b""
        if resource is not None:
            meta = {"versionId": str(number), "lastUpdated": format_instant(ts)}
            given = resource.get("meta")
            if given:
                meta = {**given, **meta}
            # resourceType, id and meta first; the client's values for them are replaced
            stored = {"resourceType": type_, "id": id_, "meta": meta, **resource}
            stored["id"], stored["meta"] = id_, meta
            body = jsonio.dumps_for_storage(stored)
        version = Version(seq, type_, id_, number, ts, body, deleted, prev)
        if prev is not None:
            prev.next_seq = seq
        self._records.append(version)
        self._by_type.setdefault(type_, []).append(seq)
        self._current[type_][id_] = version
        if resource is not None and not deleted:
            for name, key in index_keys(type_, resource):
                index = self._index.setdefault((type_, name), {})
                found = index.get(key)
                if found is None:
                    index[key] = seq
                elif isinstance(found, int):
                    index[key] = [found, seq]
                else:
                    found.append(seq)
        for listener in self._listeners:
            listener(version)
        return version

    def create(self, resource: JSON, *, resource_id: str | None = None) -> Version:
        """Store a new resource under a server-assigned (or the given) id."""
        type_ = resource["resourceType"]
        with self.lock:
            id_ = resource_id or self._new_id()
            if id_ in self._current.get(type_, {}):
                raise StoreError(f"{type_}/{id_} already exists")
            return self._write(resource, type_, id_)

    def update(self, resource: JSON, *, if_match: str | int | None = None) -> tuple[Version, bool]:
        """Store a new version (or create with the client's id); True when created."""
        type_, id_ = resource["resourceType"], resource["id"]
        with self.lock:
            current = self._current.get(type_, {}).get(id_)
            if if_match is not None:
                wanted = parse_etag(if_match)
                if current is None or current.deleted or wanted != current.version:
                    raise VersionConflict(
                        f"{type_}/{id_}: If-Match {if_match} does not match the current version"
                    )
            created = current is None or current.deleted
            return self._write(resource, type_, id_), created

    def delete(self, type_: str, id_: str) -> Version | None:
        """Mark a resource deleted; None if there was nothing to delete."""
        with self.lock:
            current = self._current.get(type_, {}).get(id_)
            if current is None or current.deleted:
                return None
            return self._write(None, type_, id_, deleted=True)

    def load(self, resources: Iterable[JSON]) -> int:
        """Store resources with their own ids, unvalidated (bulk seeding); return the count."""
        count = 0
        # The cyclic collector would re-walk every stored object again and again
        # while millions are added; nothing written here forms a cycle.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self.lock:
                for resource in resources:
                    self._write(resource, resource["resourceType"], resource["id"])
                    count += 1
        finally:
            if was_enabled:
                gc.enable()
        return count

    # -- reading -----------------------------------------------------------------

    def current(self, type_: str, id_: str) -> Version | None:
        """The latest version (possibly a deletion), or None."""
        with self.lock:
            return self._current.get(type_, {}).get(id_)

    def read(self, type_: str, id_: str) -> Version:
        """The live version; raises ResourceNotFound or ResourceGone."""
        version = self.current(type_, id_)
        if version is None:
            raise ResourceNotFound(f"{type_}/{id_} is not known")
        if version.deleted:
            raise ResourceGone(f"{type_}/{id_} was deleted")
        return version

    def vread(self, type_: str, id_: str, version_id: str) -> Version:
        """One historical version; raises ResourceNotFound or ResourceGone."""
        node = self.current(type_, id_)
        while node is not None and str(node.version) != version_id:
            node = node.prev
        if node is None:
            raise ResourceNotFound(f"{type_}/{id_} has no version {version_id}")
        if node.deleted:
            raise ResourceGone(f"{type_}/{id_} version {version_id} is a deletion")
        return node

    def history(self, type_: str, id_: str) -> list[Version]:
        """All versions of one resource, newest first."""
        out = []
        node = self.current(type_, id_)
        while node is not None:
            out.append(node)
            node = node.prev
        return out

    def count(self, type_: str | None = None) -> int:
        """How many live resources there are (of one type)."""
        with self.lock:
            types = [type_] if type_ else list(self._current)
            return sum(1 for t in types for v in self._current.get(t, {}).values() if not v.deleted)

    # -- search support (callers hold ``lock``) ------------------------------------

    def snapshot_time(self) -> int:
        """Now in microseconds: not before the latest write, and before every later one.

        A searchset's ``meta.lastUpdated`` is this instant, so a poller can use it as
        its ``_lastUpdated=gt`` watermark without missing or repeating a write.
        """
        with self.lock:
            self._last_ts = max(to_us(self.clock.now()), self._last_ts)
            return self._last_ts

    def snapshot(self) -> int:
        """The sequence number of the latest write (-1 when empty)."""
        return len(self._records) - 1

    def record(self, seq: int) -> Version:
        """The version written at ``seq``."""
        return self._records[seq]

    def type_seqs(self, type_: str) -> Sequence[int]:
        """Every version of a type, ascending."""
        return self._by_type.get(type_, [])

    def lookup(self, type_: str, index: IndexName, key: str) -> list[int]:
        """Versions whose indexed values include ``key``, ascending."""
        found = self._index.get((type_, index), {}).get(key)
        if found is None:
            return []
        return [found] if isinstance(found, int) else found

    def version_at(self, type_: str, id_: str, snapshot: int) -> Version | None:
        """The live version of a resource as of ``snapshot``."""
        node = self._current.get(type_, {}).get(id_)
        while node is not None and node.seq > snapshot:
            node = node.prev
        return node if node is not None and not node.deleted else None

    def first_seq_at_or_after(self, ts: int) -> int:
        """The first sequence number written at or after ``ts`` microseconds."""
        return bisect.bisect_left(self._records, ts, key=lambda v: v.ts)
