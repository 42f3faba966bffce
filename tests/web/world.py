"""A practice, a housing service and the pop-up app, all real, on loopback ports.

The practice is the mock FHIR server's synthetic one; the connector runs once for
real to raise flags; the pop-up app is served by ServerThread. Helpers change the
practice record the way the practice's system would (FHIR create and update).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import select

from healthy_homes.accounts.users import add_user
from healthy_homes.clock import SystemClock
from healthy_homes.config.models import (
    FlagRulesConfig,
    HousingServiceConfig,
    PracticeConfig,
    Settings,
    StorageConfig,
)
from healthy_homes.connector.run import run_once
from healthy_homes.flags.popup import PopupConfig, close_streams, create_popup_app
from healthy_homes.mock_server.server import RunningMockServer, build_server
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord, FlagStatus
from healthy_homes.web.access import Role
from healthy_homes.web.identity import Clinician, ProxyHeaderIdentity

PRACTICE = "A12345"
LONDON = ZoneInfo("Europe/London")
CLINICIAN = Clinician("dr.test", "Dr Tess Tester (GP)")
PASSWORD = "correct horse battery staple"
SECRET = b"test-secret-not-for-production-0123456789"
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(http: httpx.Client, username: str = CLINICIAN.user_id) -> None:
    """Sign ``http`` in through the sign-in form, as a browser does (cookies kept)."""
    form = http.get("/sign-in")
    found = _FORM_TOKEN.search(form.text)
    assert found is not None, "the sign-in form carries a CSRF token"
    done = http.post(
        "/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": found.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


@dataclass
class PopupWorld:
    """Everything a pop-up test talks to."""

    practice: RunningMockServer
    housing: RunningMockServer
    db: Database
    settings: Settings
    popup: ServerThread | None = None
    flagged: list[str] = field(default_factory=list)
    _used: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        """The pop-up page's root URL."""
        assert self.popup is not None
        return self.popup.url

    def add_user(
        self, username: str, display_name: str, role: Role = Role.CLINICIAN, org: str = PRACTICE
    ) -> None:
        """An account that can sign in (password ``PASSWORD``)."""
        with self.db.session() as session:
            add_user(
                session,
                username=username,
                display_name=display_name,
                role=role,
                organisation=org,
                password=PASSWORD,
                now=SystemClock().now(),
            )

    def signed_in(self, username: str = CLINICIAN.user_id) -> httpx.Client:
        """A client on the pop-up, signed in as ``username`` (close it; don't re-enter it)."""
        http = httpx.Client(base_url=self.url, timeout=10)
        sign_in(http, username)
        return http

    def start_popup(
        self,
        trusted_proxy: ProxyHeaderIdentity | None = None,
        *,
        assets_dir: Path | None = None,
        poll_seconds: float = 0.2,
    ) -> str:
        """Serve the pop-up app; returns its URL."""
        config = PopupConfig.from_settings(
            self.settings, PRACTICE, poll_seconds=poll_seconds, heartbeat_seconds=5
        )
        app = create_popup_app(
            config,
            db=self.db,
            csrf_secret=SECRET,
            assets_dir=assets_dir,
            trusted_proxy=trusted_proxy,
        )
        self.popup = ServerThread(app)
        return self.popup.start()

    def stop(self) -> None:
        """Stop every server."""
        if self.popup is not None:
            close_streams(self.popup.app)
            self.popup.stop()
        self.practice.stop()
        self.housing.stop()
        self.db.dispose()

    def fhir(self) -> httpx.Client:
        """A plain HTTP client on the practice's FHIR base."""
        return httpx.Client(base_url=self.practice.base_url + "/", timeout=10)

    def sync(self) -> None:
        """Run the connector once more (registers, flags and the appointment watch)."""
        asyncio.run(run_once(self.settings, self.db, SystemClock()))

    def take_patient(self) -> str:
        """A flagged patient no other test has used yet."""
        for patient in self.flagged:
            if patient not in self._used:
                self._used.add(patient)
                return patient
        raise AssertionError("the synthetic practice has run out of flagged patients")

    def flag_of(self, patient: str) -> FlagRecord:
        """The patient's newest flag, as stored now."""
        with self.db.session() as session:
            flags = session.exec(select(FlagRecord).where(FlagRecord.patient_id == patient)).all()
        return max(flags, key=lambda f: f.created_at)

    def book(self, patient: str, *, status: str = "booked", watch: bool = True) -> dict[str, Any]:
        """Book the patient in for today at noon, as the practice system would."""
        noon = datetime.combine(datetime.now(LONDON).date(), time(12, 0), tzinfo=LONDON)
        appointment = {
            "resourceType": "Appointment",
            "status": status,
            "start": noon.isoformat(),
            "end": noon.replace(minute=10).isoformat(),
            "participant": [
                {"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/gp-test"}, "status": "accepted"},
            ],
        }
        with self.fhir() as http:
            response = http.post("Appointment", json=appointment)
            response.raise_for_status()
            created: dict[str, Any] = response.json()
        if watch:
            self.sync()  # the connector's appointment watch now knows about it
        return created

    def set_status(self, appointment: dict[str, Any], status: str) -> None:
        """The receptionist marks the patient arrived (a FHIR update)."""
        with self.fhir() as http:
            http.put(
                f"Appointment/{appointment['id']}", json={**appointment, "status": status}
            ).raise_for_status()

    def rename(self, patient: str, given: str, family: str) -> None:
        """Change the patient's name in the practice record."""
        with self.fhir() as http:
            record = http.get(f"Patient/{patient}").json()
            record["name"] = [{"use": "official", "given": [given], "family": family}]
            http.put(f"Patient/{patient}", json=record).raise_for_status()

    def search(self, server: RunningMockServer, resource: str, **params: str) -> list[Any]:
        """Every resource of a type on one of the servers matching the parameters."""
        with httpx.Client(base_url=server.base_url + "/", timeout=10) as http:
            bundle = http.get(resource, params={"_count": "500", **params}).json()
        return [e["resource"] for e in bundle.get("entry") or []]


def build_world(tmp: Path, *, patients: int = 300, seed: int = 7) -> PopupWorld:
    """Start the servers, run the connector once, and note who was flagged."""
    practice = build_server(patients=patients, seed=seed).start()
    housing = build_server(mode="housing").start()
    db = Database(f"sqlite:///{tmp / 'popup.db'}")
    db.upgrade()
    settings = Settings(
        storage=StorageConfig(url=db.url),
        flags=FlagRulesConfig(max_new_flags_per_day=1000),
        practices=[
            PracticeConfig.model_validate(
                {
                    "ods_code": PRACTICE,
                    "name": "Test Surgery",
                    "fhir_base_url": practice.base_url,
                    "housing_service": "test-housing",
                }
            )
        ],
        housing_services=[
            HousingServiceConfig.model_validate(
                {
                    "id": "test-housing",
                    "name": "Test Safe and Healthy Homes team",
                    "ods_code": "HH001",
                    "fhir_base_url": housing.base_url,
                }
            )
        ],
    )
    world = PopupWorld(practice, housing, db, settings)
    world.add_user(CLINICIAN.user_id, CLINICIAN.display_name)
    asyncio.run(run_once(settings, db, SystemClock()))
    with db.session() as session:
        raised = session.exec(
            select(FlagRecord).where(FlagRecord.status == FlagStatus.RAISED.value)
        ).all()
    world.flagged = sorted(f.patient_id for f in raised)
    return world
