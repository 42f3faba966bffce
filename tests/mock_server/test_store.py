"""MockStore: versions, history, monotonic lastUpdated, indexes."""

from __future__ import annotations

import threading

import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.mock_server.store import (
    MockStore,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)


def _flag(subject: str = "Patient/p1") -> dict:
    return {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "housing"},
        "subject": {"reference": subject},
    }


def test_create_assigns_id_version_and_meta(store: MockStore) -> None:
    v = store.create(_flag())
    res = v.resource()
    assert res["id"] == v.id and res["meta"]["versionId"] == "1"
    assert res["meta"]["lastUpdated"].startswith("2026-03-02T09:00:00.")
    assert v.etag == 'W/"1"'


def test_last_updated_strictly_increases_while_the_clock_stands_still(
    store: MockStore, clock: FixedClock
) -> None:
    stamps = [store.create(_flag()).last_updated for _ in range(50)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 50
    clock.set(clock.now().replace(year=2020))  # a clock going backwards does not matter
    assert store.create(_flag()).last_updated > stamps[-1]


def test_update_keeps_history_for_vread(store: MockStore) -> None:
    v1 = store.create(_flag())
    res = v1.resource() | {"status": "inactive"}
    v2, created = store.update(res, if_match='W/"1"')
    assert not created and v2.version == 2
    assert store.vread("Flag", v1.id, "1").resource()["status"] == "active"
    assert store.read("Flag", v1.id).resource()["status"] == "inactive"
    assert [v.version for v in store.history("Flag", v1.id)] == [2, 1]


def test_if_match_mismatch_is_a_conflict(store: MockStore) -> None:
    v1 = store.create(_flag())
    store.update(v1.resource())
    with pytest.raises(VersionConflict):
        store.update(v1.resource(), if_match='W/"1"')


def test_update_with_new_id_creates(store: MockStore) -> None:
    version, created = store.update(_flag() | {"id": "mine"})
    assert created and version.id == "mine" and version.version == 1


def test_delete_then_read_is_gone(store: MockStore) -> None:
    v = store.create(_flag())
    store.delete("Flag", v.id)
    with pytest.raises(ResourceGone):
        store.read("Flag", v.id)
    with pytest.raises(ResourceNotFound):
        store.read("Flag", "nope")


def test_index_lookup_and_snapshot_visibility(store: MockStore) -> None:
    v1 = store.create(_flag("Patient/a"))
    snap = store.snapshot()
    store.update(v1.resource() | {"subject": {"reference": "Patient/b"}})
    seqs = store.lookup("Flag", ("subject",), "Patient/a")
    assert seqs == [v1.seq]
    assert store.record(seqs[0]).visible_at(snap)
    assert not store.record(seqs[0]).visible_at(store.snapshot())
    assert store.version_at("Flag", v1.id, snap) is v1


def test_concurrent_writers_get_distinct_sequence_and_stamps(store: MockStore) -> None:
    def write() -> None:
        for _ in range(200):
            store.create(_flag())

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [store.record(i).ts for i in range(store.snapshot() + 1)]
    assert len(stamps) == 800 and stamps == sorted(set(stamps))
    assert store.count("Flag") == 800
