"""Two housing teams' inbox on a loopback port, fed by the connector's real builder."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from healthy_homes.accounts.passwords import hash_password
from healthy_homes.clock import FixedClock
from healthy_homes.housing.app import create_housing_app
from healthy_homes.housing.teams import add_team, add_user
from healthy_homes.referrals.bundle import referral_bundle
from healthy_homes.referrals.dataset import (
    Concern,
    ContactMethod,
    MinimumDataset,
    ReferralForm,
    Tenure,
)
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.store.models import ConsentDecision, ConsentRecord
from healthy_homes.web.access import Role
from tests.store.templates import sqlite_copy

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
PASSWORD = "correct horse battery staple"
OFFICERS = {"north": "olive.north", "south": "sam.south"}
#: Each team's manager, who may also change the team's capacity.
MANAGERS = {"north": "mo.north", "south": "max.south"}


@dataclass
class Inbox:
    """The inbox app serving two teams, and what a test needs to drive it."""

    db: Database
    clock: FixedClock
    server: ServerThread
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The root URL."""
        return self.server.url

    def base(self, team: str) -> str:
        """The team's FHIR base URL."""
        return f"{self.url}/teams/{team}/fhir"

    def fhir(self, team: str, token: str | None = None) -> httpx.Client:
        """A client for the team's FHIR base, with its bearer token."""
        auth = {"Authorization": f"Bearer {token or self.tokens[team]}"}
        return httpx.Client(base_url=self.base(team) + "/", headers=auth, timeout=10)

    def send(self, team: str, bundle: dict[str, Any]) -> httpx.Response:
        """POST a transaction to the team's base, as the FHIR transport does."""
        with self.fhir(team) as client:
            return client.post("", json=bundle, headers={"Content-Type": "application/fhir+json"})

    def task(self, team: str, referral_id: str) -> dict[str, Any]:
        """The team's Task for a referral, found by identifier as the connector polls."""
        with self.fhir(team) as client:
            found = client.get(
                "Task",
                params={
                    "identifier": f"https://healthy-homes.example.org/fhir/Id/referral|{referral_id}"
                },
            )
        found.raise_for_status()
        entries = found.json().get("entry") or []
        assert len(entries) == 1, entries
        task: dict[str, Any] = entries[0]["resource"]
        return task

    def stop(self) -> None:
        """Stop serving and close the database."""
        self.server.stop()
        self.db.dispose()


def _teams(db: Database) -> dict[str, str]:
    """Teams 'north' and 'south', an officer and a manager each: the teams' tokens."""
    tokens: dict[str, str] = {}
    with db.session() as session:
        for team, user in OFFICERS.items():
            tokens[team] = add_team(session, team, f"{team.title()} Healthy Homes", START)
    with db.session() as session:
        for team, role, user in [
            *((t, Role.HOUSING_OFFICER, u) for t, u in OFFICERS.items()),
            *((t, Role.HOUSING_MANAGER, u) for t, u in MANAGERS.items()),
        ]:
            name = " ".join(p.title() for p in user.split("."))
            account = add_user(session, team, user, name, PASSWORD, START, role=role)
            # A cheaper scrypt cost for these fixtures' every sign-in: the stored hash
            # names its cost and verification follows it, so sign-in runs the same code.
            account.password_hash = hash_password(PASSWORD, n=2**12)
    return tokens


def start_inbox(tmp: Path) -> Inbox:
    """A fresh database with teams 'north' and 'south', an officer and a manager each, served.

    The database is a copy of one made once per test run (tests/store/templates.py).
    """
    db, tokens = sqlite_copy(tmp / "housing.db", _teams)
    clock = FixedClock(START)
    app = create_housing_app(db=db, csrf_secret=secrets.token_bytes(32), clock=clock)
    server = ServerThread(app)
    server.start()
    return Inbox(db, clock, server, dict(tokens))


def dataset(n: int, **changes: Any) -> MinimumDataset:
    """A synthetic patient's minimum dataset (NHS number in the 999 test range)."""
    values: dict[str, Any] = {
        "nhs_number": f"99900{n:05d}",
        "given_name": "Ada",
        "family_name": f"Testperson{n}",
        "birth_date": "1948-03-02",
        "address_lines": [f"{n} Coldwell Lane"],
        "city": "Sheffield",
        "postcode": "S10 5TJ",
        "phone": "0114 496 0000",
        "practice_ods": "C84001",
        "referrer": "Dr Jane Example",
        "referral_form": ReferralForm(
            tenure=Tenure.PRIVATE_RENTED,
            concerns=[Concern.COLD_OR_DAMP, Concern.FALL_HAZARDS],
            contact_method=ContactMethod.PHONE,
        ),
    }
    values.update(changes)
    return MinimumDataset.model_validate(values)


def referral(
    referral_id: str,
    ds: MinimumDataset,
    *,
    decision: str = ConsentDecision.GIVEN,
    withdrawn: datetime | None = None,
    team_name: str = "North Healthy Homes",
) -> dict[str, Any]:
    """The transaction the connector sends, built by the connector's own code."""
    consent = ConsentRecord(
        id=f"consent-{referral_id}",
        practice_ods=ds.practice_ods,
        patient_id="pat-1",
        decision=decision,
        recorded_by="Dr Jane Example",
        wording_version="2026-11",
        recorded_at=START,
        withdrawn_at=withdrawn,
    )
    return referral_bundle(
        referral_id=referral_id,
        dataset=ds,
        consent=consent,
        housing_ods=None,
        housing_name=team_name,
        authored=START,
    )
