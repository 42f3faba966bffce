"""The CLI that sets teams up, the migration, sessions ending, the queue's order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from healthy_homes.cli import main
from healthy_homes.store.db import Database, alembic_config
from tests.housing.test_pages_http import _sign_in, _token
from tests.housing.world import Inbox, dataset, referral

TABLES = {"housing_team", "housing_referral", "housing_activity"}


def test_migration_0006_goes_down_and_up_again(tmp_path: Path) -> None:
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    command.downgrade(alembic_config(db.engine), "0004")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    db.dispose()


def test_cli_adds_a_team_an_officer_and_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHY_HOMES__STORAGE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HEALTHY_HOMES_HOUSING_PASSWORD", "a sufficiently long one")
    monkeypatch.chdir(tmp_path)
    assert main(["housing", "add-team", "east", "--name", "East Team"]) == 0
    out = capsys.readouterr().out
    assert "/teams/east/fhir" in out and "Bearer token" in out
    assert main(["housing", "add-user", "east", "eve", "--name", "Eve East"]) == 0
    assert main(["housing", "set-capacity", "east", "5", "--overdue-days", "7"]) == 0
    assert main(["housing", "add-user", "nowhere", "x"]) == 2  # no such team
    monkeypatch.setenv("HEALTHY_HOMES_HOUSING_PASSWORD", "short")
    assert main(["housing", "add-user", "east", "eve"]) == 2


def test_queue_puts_urgent_first_then_oldest(inbox: Inbox) -> None:
    inbox.send("north", referral("q-old", dataset(51, family_name="Routineold")))
    inbox.clock.advance(timedelta(days=3))
    urgent = referral("q-urgent", dataset(52, family_name="Urgentnew"))
    urgent["entry"][2]["resource"]["priority"] = "urgent"  # set by the practice
    inbox.send("north", urgent)
    inbox.send("north", referral("q-new", dataset(53, family_name="Routinenew")))
    client, _ = _sign_in(inbox, "north")
    page = client.get("/").text
    order = [page.index(n) for n in ("Urgentnew", "Routineold", "Routinenew")]
    assert order == sorted(order)


def test_sign_out_and_expiry_end_the_session(inbox: Inbox) -> None:
    client, token = _sign_in(inbox, "north")
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 303
    assert client.get("/").headers["location"].startswith("/sign-in")

    client, _ = _sign_in(inbox, "north")
    inbox.clock.advance(timedelta(hours=9))
    assert client.get("/").headers["location"].startswith("/sign-in")


def test_capacity_page_sets_the_figure(inbox: Inbox) -> None:
    officer, token = _sign_in(inbox, "north")
    assert officer.get("/capacity").status_code == 403  # a manager's setting
    assert officer.post("/capacity", data={"csrf_token": token, "per_week": "4"}).status_code == 403
    client, token = _sign_in(inbox, "north", manager=True)
    page = client.get("/capacity")
    bad = client.post("/capacity", data={"csrf_token": _token(page), "per_week": "lots"})
    assert bad.headers["location"] == "/capacity?error=number"
    assert client.post("/capacity", data={"csrf_token": token, "per_week": "4"}).status_code == 303
    body = httpx.get(
        f"{inbox.url}/teams/north/capacity",
        headers={"Authorization": f"Bearer {inbox.tokens['north']}"},
    ).json()
    assert body["capacityPerWeek"] == 4 and body["freePlaces"] == 4
