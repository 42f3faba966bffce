"""The connector reads the housing team's capacity from configuration alone.

``capacity_url`` in a ``[[housing_services]]`` entry is all it takes: the connector's
service builds the provider, and changing the team's capacity in the inbox changes
how many new flags the next run raises. Real inbox on a loopback port, real mock
practice, real connector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FlagRulesConfig, Settings, StorageConfig
from healthy_homes.connector.service import ConnectorService
from healthy_homes.flags.capacity import ConfiguredCapacity, capacity_from_settings, combine
from healthy_homes.flags.capacity import HousingCapacity as Room
from healthy_homes.housing.teams import set_capacity
from healthy_homes.store.db import Database
from tests.connector.helpers import NOW, practice, practice_server
from tests.housing.world import Inbox


def _settings(db: Database, practice_url: str, inbox: Inbox, **service: Any) -> Settings:
    north = {
        "id": "north",
        "name": "North Safe and Healthy Homes",
        "fhir_base_url": inbox.base("north"),
        "auth": {"kind": "bearer", "token": inbox.tokens["north"]},
        **service,
    }
    return Settings(
        storage=StorageConfig(url=db.url),
        practices=[practice(practice_url)],
        housing_services=[north],
        flags=FlagRulesConfig(max_new_flags_per_day=1000),
    )


async def test_changing_the_capacity_in_the_inbox_throttles_the_connector_s_flags(
    inbox: Inbox, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'connector.db'}")
    db.upgrade()
    server = practice_server(patients=300, seed=7)
    config = _settings(db, server.base_url, inbox, capacity_url=f"{inbox.url}/teams/north/capacity")
    with inbox.db.session() as session:
        set_capacity(session, "north", 2)
    try:
        async with ConnectorService(config, db, FixedClock(NOW)) as connector:
            assert isinstance(connector.capacity, ConfiguredCapacity)
            first = (await connector.run("A12345", "full")).flags
            assert first is not None and len(first.raised) == 2 and first.throttled
            assert first.skipped["housing service at capacity"] > 0

            with inbox.db.session() as session:
                set_capacity(session, "north", 5)  # the team says it can take more
            second = (await connector.run("A12345", "full")).flags
            assert second is not None and len(second.raised) == 5 and second.throttled

            with inbox.db.session() as session:
                set_capacity(session, "north", 0)  # full
            third = (await connector.run("A12345", "full")).flags
            assert third is not None and third.raised == [] and third.throttled
    finally:
        server.stop()
        db.dispose()


def test_no_capacity_url_means_no_throttle(inbox: Inbox, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'plain.db'}")
    assert capacity_from_settings(_settings(db, "http://127.0.0.1:9/fhir", inbox)) is None
    db.dispose()


def test_several_services_give_their_room_together() -> None:
    assert combine([]) == Room()
    assert combine([Room(free_places=2), Room(free_places=3)]).free_places == 5
    assert combine([Room(accepting=False, free_places=0), Room(free_places=3)]).free_places == 3
    assert not combine([Room(accepting=False, free_places=0)] * 2).accepting
    assert combine([Room(free_places=1), Room()]).free_places is None  # one gave no number
