"""Paging while others write: every resource matching at the first page is seen once.

Writes between pages are the cases naive keyset or offset paging gets wrong: an
update moves a seen resource to the end (repeat), a delete shifts offsets (skip), an
update makes an unseen resource stop matching (skip). Then a poller's watermark
(the Bundle's ``meta.lastUpdated``) must pick up exactly the writes made meanwhile.
"""

from __future__ import annotations

import itertools
import threading

import httpx

from healthy_homes.mock_server.server import RunningMockServer
from healthy_homes.mock_server.store import MockStore


def _matching_now(store: MockStore) -> set[str]:
    with store.lock:
        snap = store.snapshot()
        return {
            store.record(seq).id
            for seq in store.lookup("Patient", ("active",), "true")
            if store.record(seq).visible_at(snap)
        }


def _next(bundle: dict) -> str | None:
    return next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None)


def test_interleaved_writes_never_skip_or_repeat(mock_fhir_server: RunningMockServer) -> None:
    base = mock_fhir_server.base_url
    expected = _matching_now(mock_fhir_server.store)
    seen: list[str] = []
    written: set[str] = set()
    with httpx.Client(base_url=base + "/") as http:
        bundle = http.get("Patient", params={"active": "true", "_count": "9"}).json()
        watermark = bundle["meta"]["lastUpdated"]
        for step in itertools.count():
            page_ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
            seen += page_ids
            unseen = sorted(expected - set(seen))
            for pid in page_ids:
                # a seen one updated (would reappear at the end under naive keyset paging)
                current = http.get(f"Patient/{pid}")
                if current.status_code != 200 or not current.json()["active"]:
                    continue  # changed earlier in this test
                res = current.json()
                res["telecom"] = [{"system": "phone", "value": f"07700 900{step % 1000:03d}"}]
                assert http.put(f"Patient/{pid}", json=res).status_code == 200
                written.add(pid)
                break
            if len(unseen) > 3:
                # an unseen one stops matching, another is deleted: both must still come
                res = http.get(f"Patient/{unseen[0]}").json() | {"active": False}
                assert http.put(f"Patient/{res['id']}", json=res).status_code == 200
                assert http.delete(f"Patient/{unseen[1]}").status_code == 204
            new = {"resourceType": "Patient", "active": True, "gender": "unknown"}
            written.add(http.post("Patient", json=new).json()["id"])
            url = _next(bundle)
            if url is None:
                break
            bundle = http.get(url).json()
            assert bundle["meta"]["lastUpdated"] == watermark
        assert len(seen) == len(set(seen)), "an entry was repeated"
        assert set(seen) == expected, "an entry was skipped"
        # the next poll from the watermark sees exactly what changed meanwhile
        polled = []
        bundle = http.get(
            "Patient", params={"active": "true", "_lastUpdated": f"gt{watermark}", "_count": "50"}
        ).json()
        while True:
            polled += [e["resource"]["id"] for e in bundle.get("entry", [])]
            if (url := _next(bundle)) is None:
                break
            bundle = http.get(url).json()
        assert set(polled) == written and len(polled) == len(written)


def test_concurrent_writer_thread(mock_fhir_server: RunningMockServer) -> None:
    """A writer thread updates and creates matching Patients while a reader pages.

    The reader waits for at least one write between pages (a semaphore, no sleeps),
    so the interleaving is guaranteed; the writer keeps going meanwhile.
    """
    base = mock_fhir_server.base_url
    store = mock_fhir_server.store
    stop = threading.Event()
    wrote = threading.Semaphore(0)
    writes = 0

    def writer() -> None:
        nonlocal writes
        with httpx.Client(base_url=base + "/") as http:
            ids = itertools.cycle(sorted(_matching_now(store)))
            while not stop.is_set():
                pid = next(ids)
                res = http.get(f"Patient/{pid}").json()
                res["gender"] = "other" if res.get("gender") != "other" else "unknown"
                http.put(f"Patient/{pid}", json=res)
                http.post("Patient", json={"resourceType": "Patient", "active": True})
                writes += 2
                wrote.release()

    with httpx.Client(base_url=base + "/") as http:
        expected = _matching_now(store)
        first = http.get("Patient", params={"active": "true", "_count": "5"}).json()
        thread = threading.Thread(target=writer)
        thread.start()
        pages = 1
        try:
            seen = [e["resource"]["id"] for e in first["entry"]]
            url = _next(first)
            while url is not None:
                assert wrote.acquire(timeout=30)
                bundle = http.get(url).json()
                seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
                url = _next(bundle)
                pages += 1
        finally:
            stop.set()
            thread.join()
    assert writes >= 2 * (pages - 1) and pages > 50
    assert len(seen) == len(set(seen))
    assert set(seen) == expected
