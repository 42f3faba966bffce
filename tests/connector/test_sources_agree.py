"""Condition search, Group membership and Bulk export give the same registers."""

from __future__ import annotations

import asyncio

import pytest

from healthy_homes.clock import FixedClock
from healthy_homes.connector.run import run_once
from healthy_homes.mock_server.bulk import exports_of
from healthy_homes.store.db import Database
from tests.connector.helpers import NOW, memberships, practice, practice_server, settings

pytestmark = pytest.mark.e2e


def _sync(db: Database, server, **extra) -> set:
    config = settings(db, practice(server, **extra))
    report = asyncio.run(run_once(config, db, FixedClock(NOW)))
    [run] = report.practices
    assert run.error is None, run.error
    return memberships(db)


def test_group_and_bulk_read_the_same_membership_as_condition_search(tmp_path) -> None:
    server = practice_server(patients=600, seed=11)
    try:
        found = {}
        for source in ("condition", "group", "bulk"):
            db = Database(f"sqlite:///{tmp_path / source}.db")
            db.upgrade()
            found[source] = {(r, p) for r, p, _ in _sync(db, server, register_source=source)}
            db.dispose()
        assert len(found["condition"]) > 50
        assert {r for r, _ in found["condition"]} == {"copd", "asthma", "falls", "high_risk"}
        assert found["group"] == found["condition"]
        assert found["bulk"] == found["condition"]
    finally:
        server.stop()


def test_groups_found_by_id_identifier_or_name(db: Database) -> None:
    server = practice_server(patients=300, seed=7)
    try:
        reference = _sync(db, server)
        groups = {
            "copd": "Group/register-copd",
            "asthma": "identifier=https://mock-practice.example.org/Id/register/A12345|asthma",
            "falls": "name=Falls register",
        }
        again = _sync(db, server, register_source="group", groups=groups, ods="A12345")
        assert {(r, p) for r, p, _ in again} == {(r, p) for r, p, _ in reference}
    finally:
        server.stop()


def test_bulk_polls_honour_retry_after_with_the_injected_sleep(db: Database) -> None:
    server = practice_server(patients=300, seed=7)
    exports = exports_of(server.app)
    exports.polls, exports.retry_after = 2, 7
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    try:
        config = settings(db, practice(server, register_source="bulk"))
        report = asyncio.run(run_once(config, db, FixedClock(NOW), sleep=sleep))
        assert report.practices[0].error is None
        # Two 202 answers per register export, each saying Retry-After: 7.
        assert waits == [7.0] * 8
        assert memberships(db)
    finally:
        server.stop()
