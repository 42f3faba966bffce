"""An open event stream stops sending once its user is signed out or disabled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from healthy_homes.accounts import DatabaseAccounts, users
from healthy_homes.config.models import HousingServiceConfig, PracticeConfig
from healthy_homes.flags.popup import PopupConfig, close_streams, create_popup_app
from tests.access.apps import PRACTICE, SECRET, AccessWorld, build_world

#: Enough lines for many heartbeats: the stream must have ended well before.
MAX_LINES = 400


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    built = build_world(tmp_path)
    yield built
    built.db.dispose()


def _popup(world: AccessWorld) -> TestClient:
    nowhere = "http://127.0.0.1:9/fhir"
    practice = PracticeConfig.model_validate(
        {"ods_code": PRACTICE, "name": "Test Surgery", "fhir_base_url": nowhere}
    )
    service = HousingServiceConfig.model_validate(
        {"id": "shh", "name": "Test team", "fhir_base_url": nowhere}
    )
    config = PopupConfig(practice, service, heartbeat_seconds=0.05, poll_seconds=60)
    app = create_popup_app(config, db=world.db, csrf_secret=SECRET, clock=world.clock)
    return TestClient(app, follow_redirects=False)


@pytest.mark.parametrize("ended_by", ["disabled", "signed out"])
def test_the_stream_ends_when_the_session_does(world: AccessWorld, ended_by: str) -> None:
    token = world.token_for("clinician")
    with _popup(world) as client:
        client.cookies.set("hh_popup_session", token)
        with client.stream("GET", "/events") as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            first = [next(lines) for _ in range(3)]  # retry, then the snapshot
            assert any(line.startswith("event: snapshot") for line in first)
            if ended_by == "disabled":
                with world.db.session() as session:
                    users.set_disabled(session, "clinician")
            else:
                DatabaseAccounts(world.db, world.clock).sign_out(token)
            rest = [line for _, line in zip(range(MAX_LINES), lines, strict=False)]
            assert len(rest) < MAX_LINES, "the stream went on after the session ended"
        close_streams(client.app)  # type: ignore[arg-type]
