"""Housing mode: receiving referral transactions and moving their Tasks on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from healthy_homes.clock import FixedClock
from healthy_homes.fhir.systems import HH_CONSENT_ID, HH_REFERRAL_ID, NHS_NUMBER
from healthy_homes.mock_server.app import create_app
from healthy_homes.mock_server.housing import (
    RESULTING_ACTIVITY,
    HousingMode,
    Step,
    inbox_of,
    parse_timeline,
)
from healthy_homes.mock_server.store import MockStore

BASE = "http://mock.test/fhir"
ADMIN = "http://mock.test/admin/tasks"
NHS = "9990000018"


def referral(referral_id: str, nhs_number: str = NHS) -> dict:
    """A referral transaction shaped like the connector's: four conditional creates."""
    p, c, s, t = (f"urn:uuid:{referral_id}-{x}" for x in "pcst")
    ident = {"system": HH_REFERRAL_ID, "value": referral_id}
    resources = [
        (
            p,
            {
                "resourceType": "Patient",
                "identifier": [{"system": NHS_NUMBER, "value": nhs_number}],
                "name": [{"family": "Example", "given": ["Sam"]}],
            },
            f"identifier={NHS_NUMBER}|{nhs_number}",
        ),
        (
            c,
            {
                "resourceType": "Consent",
                "identifier": [{"system": HH_CONSENT_ID, "value": f"consent-{referral_id}"}],
                "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "category": [{"coding": [{"code": "59284-0"}]}],
                "patient": {"reference": p},
            },
            f"identifier={HH_CONSENT_ID}|consent-{referral_id}",
        ),
        (
            s,
            {
                "resourceType": "ServiceRequest",
                "identifier": [ident],
                "status": "active",
                "intent": "order",
                "subject": {"reference": p},
                "supportingInfo": [{"reference": c}],
            },
            f"identifier={HH_REFERRAL_ID}|{referral_id}",
        ),
        (
            t,
            {
                "resourceType": "Task",
                "identifier": [ident],
                "status": "requested",
                "intent": "order",
                "focus": {"reference": s},
                "for": {"reference": p},
            },
            f"identifier={HH_REFERRAL_ID}|{referral_id}",
        ),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": cond},
            }
            for url, resource, cond in resources
        ],
    }


def _app(store: MockStore, timeline: str | None = None) -> FastAPI:
    extensions = [HousingMode(tuple(parse_timeline(timeline)))] if timeline else []
    return create_app(store, mode="housing", extensions=extensions)


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE + "/") as c:
        yield c


async def _send(client: httpx.AsyncClient, referral_id: str) -> dict[str, str]:
    """POST the referral; return the server's reference for each resource type."""
    r = await client.post(BASE, json=referral(referral_id))
    assert r.status_code == 200, r.text
    return {
        e["resource"]["resourceType"]: e["response"]["status"] + " " + e["resource"]["id"]
        for e in r.json()["entry"]
    }


async def test_a_repeated_referral_transaction_creates_nothing_new(store: MockStore) -> None:
    async for client in _client(_app(store)):
        first = await _send(client, "ref-1")
        assert {v.split()[0] for v in first.values()} == {"201"}
        counts = {t: store.count(t) for t in first}
        again = await _send(client, "ref-1")
        assert {v.split()[0] for v in again.values()} == {"200"}
        assert {t: v.split()[-1] for t, v in again.items()} == {
            t: v.split()[-1] for t, v in first.items()
        }
        assert {t: store.count(t) for t in first} == counts == dict.fromkeys(counts, 1)
        # The references inside point at the existing resources, not new ones.
        task = store.read("Task", first["Task"].split()[-1]).resource()
        assert task["focus"]["reference"] == f"ServiceRequest/{first['ServiceRequest'].split()[-1]}"
        # A second referral for the same patient reuses the Patient only.
        other = await _send(client, "ref-2")
        assert other["Patient"] == "200 OK " + first["Patient"].split()[-1]
        assert store.count("Task") == 2 and store.count("Patient") == 1


async def test_admin_moves_a_task_to_completion(store: MockStore, clock: FixedClock) -> None:
    async for client in _client(_app(store)):
        task_id = (await _send(client, "ref-1"))["Task"].split()[-1]
        for status in ("received", "accepted"):
            r = await client.post(f"{ADMIN}/{task_id}/status", json={"status": status})
            assert r.status_code == 200 and r.json()["status"] == status
        clock.advance(timedelta(hours=1))
        r = await client.post(f"{ADMIN}/{task_id}/status", json={"status": "in-progress"})
        started = r.json()["executionPeriod"]["start"]
        assert started.startswith("2026-03-02T10:00:00")
        clock.advance(timedelta(days=2))
        r = await client.post(
            f"{ADMIN}/{task_id}/status",
            json={"status": "completed", "output": "Handrails fitted"},
        )
        task = r.json()
        assert r.headers["etag"] == 'W/"5"' and task["meta"]["versionId"] == "5"
        assert task["status"] == "completed" and "statusReason" not in task
        assert task["executionPeriod"] == {"start": started, "end": task["lastModified"]}
        assert task["lastModified"].startswith("2026-03-04T10:00:00")
        assert task["output"] == [
            {
                "type": {"coding": [RESULTING_ACTIVITY]},
                "valueCodeableConcept": {"text": "Handrails fitted"},
            }
        ]
        # What the referrer polls for: the change is in the next search.
        found = (await client.get("Task", params={"status": "completed"})).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [task_id]


async def test_admin_rejects_with_a_reason_and_refuses_bad_moves(store: MockStore) -> None:
    async for client in _client(_app(store)):
        task_id = (await _send(client, "ref-1"))["Task"].split()[-1]
        url = f"{ADMIN}/{task_id}/status"
        r = await client.post(url, json={"status": "completed"})
        assert r.status_code == 409 and "cannot go from requested to completed" in r.text
        r = await client.post(url, json={"status": "rejected"})
        assert r.status_code == 400 and "needs a reason" in r.text
        r = await client.post(url, json={"status": "rejected", "reason": "Outside our area"})
        assert r.status_code == 200
        assert r.json()["statusReason"] == {"text": "Outside our area"}
        r = await client.post(url, json={"status": "accepted"})
        assert r.status_code == 409
        assert (
            await client.post(f"{ADMIN}/nope/status", json={"status": "accepted"})
        ).status_code == 404
        assert (await client.post(url, json={"state": "accepted"})).status_code == 400


async def test_a_scripted_timeline_follows_the_clock(store: MockStore, clock: FixedClock) -> None:
    app = _app(store, "received@0s,accepted@10m,in-progress@1h,completed@2h")
    async for client in _client(app):
        task_id = (await _send(client, "ref-1"))["Task"].split()[-1]

        async def status() -> str:
            return str((await client.get(f"Task/{task_id}")).json()["status"])

        assert await status() == "received"
        clock.advance(timedelta(minutes=9))
        assert await status() == "received"
        clock.advance(timedelta(minutes=1))
        assert await status() == "accepted"
        clock.advance(timedelta(hours=5))  # two steps due at once: both apply, in order
        task = (await client.get(f"Task/{task_id}")).json()
        assert task["status"] == "completed" and task["meta"]["versionId"] == "5"
        assert task["output"][0]["type"]["coding"] == [RESULTING_ACTIVITY]
        assert [v.resource()["status"] for v in store.history("Task", task_id)] == [
            "completed",
            "in-progress",
            "accepted",
            "received",
            "requested",
        ]


async def test_timeline_steps_stop_when_someone_else_moves_the_task(
    store: MockStore, clock: FixedClock
) -> None:
    app = _app(store, "accepted@1h,in-progress@2h")
    async for client in _client(app):
        task_id = (await _send(client, "ref-1"))["Task"].split()[-1]
        task = (await client.get(f"Task/{task_id}")).json()
        task["status"] = "cancelled"
        task["statusReason"] = {"text": "Patient moved away"}
        assert (await client.put(f"Task/{task_id}", json=task)).status_code == 200
        clock.advance(timedelta(hours=3))
        assert (await client.get(f"Task/{task_id}")).json()["status"] == "cancelled"
        assert inbox_of(app).apply_due() == 0


async def test_a_hand_move_takes_the_task_off_its_timeline(
    store: MockStore, clock: FixedClock
) -> None:
    app = _app(store, "accepted@1h,in-progress@2h")
    async for client in _client(app):
        task_id = (await _send(client, "ref-1"))["Task"].split()[-1]
        r = await client.post(f"{ADMIN}/{task_id}/status", json={"status": "received"})
        assert r.status_code == 200
        clock.advance(timedelta(hours=3))
        assert (await client.get(f"Task/{task_id}")).json()["status"] == "received"


async def test_housing_endpoints_only_in_housing_mode(store: MockStore) -> None:
    async for client in _client(create_app(store)):
        r = await client.post(f"{ADMIN}/x/status", json={"status": "accepted"})
        assert r.status_code == 404
    housing = create_app(MockStore(), mode="housing")
    assert inbox_of(housing).timeline == ()


def test_timeline_syntax() -> None:
    assert parse_timeline("received@0s, rejected@90m:No capacity this quarter") == [
        Step(timedelta(0), "received"),
        Step(timedelta(minutes=90), "rejected", "No capacity this quarter"),
    ]
    assert parse_timeline("completed@2d")[0].delay == timedelta(days=2)
    for bad in ("accepted", "accepted@soon", "teleported@1s", "accepted@1h,received@1m"):
        with pytest.raises(ValueError, match="timeline"):
            parse_timeline(bad)
