"""The service on a real loopback port, and its command line."""

from __future__ import annotations

import json

import httpx
import pytest

from healthy_homes.cli import main
from healthy_homes.flags.cds_hooks.app import create_app
from healthy_homes.flags.cds_hooks.service import CdsHooksService
from healthy_homes.serving import ServerThread
from tests.cds_hooks.conftest import settings_for
from tests.cds_hooks.ehr import SERVICE, bearer, hook_body, token
from tests.flags.world import NOW, patient


async def test_cards_over_a_loopback_port(flagged, practice, housing, clock) -> None:
    service = CdsHooksService(settings_for(practice.base_url, housing.base_url), flagged, clock)
    with ServerThread(create_app(service)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/cds-services")).status_code == 200
            body = hook_body("p1", prefetch={"patient": patient("p1", 1)})
            answer = await http.post(
                f"/cds-services/{SERVICE}", json=body, headers=bearer(token(NOW))
            )
    assert answer.status_code == 200 and len(answer.json()["cards"]) == 1


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cds-hooks", "--help"])
    assert "serve" in capsys.readouterr().out
    assert main(["cds-hooks", "discovery"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [s["hook"] for s in document["services"]] == [
        "patient-view",
        "appointment-book",
        "encounter-start",
    ]
