"""Property: whatever happens, nothing leaves without consent and nobody is re-flagged too soon.

Random sequences of events (flag, show, decline, dismiss, snooze, consent, withdraw,
a send whose answer was lost, retry, restart over the same SQLite file, time passing)
run against real mock practice and housing servers. After every event we look at what
the servers stored during it, and hold it against a model kept by the test alone:

- every ServiceRequest that arrives at the housing service rests on a consent the
  model says is in force, and a withdrawn consent's referrals end revoked/cancelled;
- no Flag is written for a patient inside a suppression window the model opened
  (decline 12 months, dismissal 3 months, consent 12 months, withdrawal 12 months),
  and a patient never has two active Flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import FlagRulesConfig
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.errors import HealthyHomesError
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import HH_CONSENT_ID, HH_REFERRAL_ID
from healthy_homes.flags.lifecycle import raise_flags
from healthy_homes.flags.transitions import flags_for_patient, mark_shown
from healthy_homes.mock_server.server import RunningMockServer, build_server
from healthy_homes.mock_server.store import MockStore
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagStatus, Referral, ReferralStatus
from tests.flags.world import (
    CLINICIAN,
    NOW,
    PRACTICE,
    fresh_db,
    housing_service,
    on_register,
    patient,
    registers,
)

PATIENTS = ("p0", "p1", "p2")
TLS = ssl.create_default_context()  # built once: loading CA certificates per client is slow
# Commits fsync; on tmpfs they cost nothing, and the test makes thousands.
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
WINDOWS = {  # the defaults, written out independently of the code
    "declined": timedelta(days=365),
    "dismissed": timedelta(days=90),
    "accepted": timedelta(days=365),
    "withdrawn": timedelta(days=365),
}

who = st.sampled_from([0, 0, 0, 1, 2])  # mostly one patient, so their story has several acts
ARGS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "flag": st.just(()),
    "send": st.just(()),
    "withdraw": st.just(()),  # the consent given most recently, if still in force
    "lost_ack": st.just(()),  # a sent referral of that consent
    "retry": st.just(()),
    "restart": st.just(()),
    "consent": st.tuples(who, st.booleans()),  # send at once, or leave it pending
    "advance": st.tuples(st.sampled_from([1, 30, 89, 91, 200, 364, 366])),
}
# Raising flags and time passing come up more often: they are where windows are tested.
KINDS = (
    ["flag"] * 4
    + ["advance"] * 2
    + ["consent"] * 2
    + ["show", "decline", "dismiss", "snooze", "withdraw", "lost_ack", "send", "retry", "restart"]
)
EVENT = st.sampled_from(KINDS).flatmap(
    lambda kind: ARGS.get(kind, st.tuples(who)).map(lambda args: (kind, *args))
)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RunningMockServer, RunningMockServer]]:
    practice = build_server(patients=0).start()
    practice.store.load([patient(p, i) for i, p in enumerate(PATIENTS)])
    housing = build_server(mode="housing").start()
    yield practice, housing
    practice.stop()
    housing.stop()


@dataclass
class Model:
    """What the test alone believes: consents in force, and suppression windows."""

    active: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(PATIENTS))
    withdrawn: set[str] = field(default_factory=set)
    given: list[tuple[str, str]] = field(default_factory=list)  # (patient, consent) in order
    windows: dict[str, list[tuple[datetime, datetime]]] = field(
        default_factory=lambda: {p: [] for p in PATIENTS}
    )
    referral_consent: dict[str, str] = field(default_factory=dict)  # SR identifier -> consent
    flag_status: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (patient, st)

    def suppress(self, patient_id: str, outcome: str, at: datetime) -> None:
        self.windows[patient_id].append((at, at + WINDOWS[outcome]))


class World:
    """Our side, rebuilt from the same SQLite file on every restart."""

    def __init__(self, path: Path, practice_url: str, housing_url: str) -> None:
        self.url, self.practice_url, self.housing_url = (
            f"sqlite:///{path}",
            practice_url,
            housing_url,
        )
        self.clock = FixedClock(NOW)
        self.db: Database | None = None
        self.clients: list[FhirClient] = []

    async def open(self) -> ClinicianActions:
        self.db = Database(self.url)
        practice = FhirClient(self.practice_url, practice=PRACTICE, verify=TLS)
        housing = FhirClient(self.housing_url, verify=TLS)
        self.clients = [practice, housing]
        return ClinicianActions(
            self.db,
            practice_ods=PRACTICE,
            practice_client=practice,
            service=housing_service(self.housing_url),
            housing_client=housing,
            rules=FlagRulesConfig(),
            clock=self.clock,
        )

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        if self.db is not None:
            self.db.dispose()


def _open_flag(desk: ClinicianActions, patient_id: str) -> str | None:
    found = flags_for_patient(desk.db, PRACTICE, patient_id, open_only=True)
    return found[0].id if found else None


async def _apply(
    desk: ClinicianActions, world: World, model: Model, event: tuple[Any, ...]
) -> None:
    kind, now = event[0], world.clock.now()
    if kind == "flag":
        await raise_flags(
            desk.db, desk.practice_client, PRACTICE, registers(), desk.rules, world.clock
        )
    elif kind == "advance":
        world.clock.advance(timedelta(days=event[1]))
    elif kind == "send":
        await desk.send_pending()
    elif kind in ("show", "decline", "dismiss", "snooze"):
        patient_id = PATIENTS[event[1]]
        flag_id = _open_flag(desk, patient_id)
        if flag_id is None:
            return
        if kind == "show":
            mark_shown(desk.db, flag_id, by=CLINICIAN, clock=world.clock)
        elif kind == "decline":
            await desk.decline(flag_id, recorded_by=CLINICIAN, reason="not now")
            model.suppress(patient_id, "declined", now)
        elif kind == "dismiss":
            await desk.dismiss(flag_id, recorded_by=CLINICIAN)
            model.suppress(patient_id, "dismissed", now)
        else:
            await desk.discuss_next_time(flag_id, recorded_by=CLINICIAN)
    elif kind == "consent":
        patient_id = PATIENTS[event[1]]
        flags = flags_for_patient(desk.db, PRACTICE, patient_id)
        if not flags:
            return
        already = flags[0].outcome == FlagStatus.ACCEPTED
        outcome = await desk.consent(flags[0].id, recorded_by=CLINICIAN, send=event[2])
        if model.active[patient_id] != outcome.consent.id:
            model.given.append((patient_id, outcome.consent.id))
        model.active[patient_id] = outcome.consent.id
        if not already:
            model.suppress(patient_id, "accepted", now)
    elif kind == "withdraw":
        if not model.given:
            return
        patient_id, consent_id = model.given.pop()
        result = await desk.withdraw(consent_id, recorded_by=CLINICIAN)
        assert result.pending == []
        model.active[patient_id] = None
        model.withdrawn.add(consent_id)
        model.suppress(patient_id, "withdrawn", now)
    elif kind == "lost_ack" and model.given:  # the send went through; we crashed before noting it
        consent_id = model.given[-1][1]
        with desk.db.session() as session:
            query = select(Referral).where(Referral.consent_id == consent_id)
            for referral in session.exec(query):
                if referral.status == ReferralStatus.SENT:
                    referral.status, referral.sent_at = ReferralStatus.PENDING, None
                    session.add(referral)


def _written(store: MockStore, since: int) -> list[Any]:
    with store.lock:
        return [store.record(seq) for seq in range(since + 1, store.snapshot() + 1)]


def _ident(resource: dict[str, Any], system: str) -> str | None:
    return next((i["value"] for i in resource.get("identifier", []) if i["system"] == system), None)


def _check_housing(store: MockStore, since: int, model: Model) -> None:
    for version in _written(store, since):
        if version.deleted or version.type != "ServiceRequest":
            continue
        request = version.resource()
        referral = _ident(request, HH_REFERRAL_ID)
        if version.version == 1:
            consent_ref = request["supportingInfo"][0]["reference"].split("/")[-1]
            consent = _ident(store.read("Consent", consent_ref).resource(), HH_CONSENT_ID)
            assert consent in model.active.values(), "a referral left without consent in force"
            model.referral_consent[referral] = consent  # type: ignore[index]
    for type_ in ("ServiceRequest", "Task"):
        for seq in store.type_seqs(type_):
            version = store.record(seq)
            if version.next_seq is not None or version.deleted:
                continue
            resource = version.resource()
            consent = model.referral_consent.get(_ident(resource, HH_REFERRAL_ID) or "")
            if consent in model.withdrawn:
                wanted = "revoked" if type_ == "ServiceRequest" else "cancelled"
                assert resource["status"] == wanted, f"withdrawn consent, {type_} still live"


def _check_practice(store: MockStore, since: int, model: Model) -> None:
    for version in _written(store, since):
        if version.deleted or version.type != "Flag":
            continue
        flag = version.resource()
        patient_id = flag["subject"]["reference"].split("/")[-1]
        if version.version == 1:
            start = datetime.fromisoformat(flag["period"]["start"])
            for opened, closes in model.windows[patient_id]:
                assert not opened <= start < closes, f"{patient_id} flagged inside a window"
        model.flag_status[version.id] = (patient_id, flag["status"])
    for patient_id in PATIENTS:
        live = [f for f, (p, s) in model.flag_status.items() if p == patient_id and s == "active"]
        assert len(live) <= 1, f"{patient_id} has {len(live)} active Flags"


async def _run(
    events: list[tuple[Any, ...]], practice: RunningMockServer, housing: RunningMockServer
) -> None:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        db = fresh_db(Path(folder))
        for i, patient_id in enumerate(PATIENTS):
            on_register(db, patient_id, ("copd", "high_risk", "asthma")[i])
        db.dispose()
        world, model = World(Path(folder) / "hh.db", practice.base_url, housing.base_url), Model()
        desk = await world.open()
        previous: tuple[Any, ...] | None = None
        try:
            for event in [("flag",), *events]:
                if event == ("retry",):
                    event = previous or ("flag",)
                if event == ("restart",):
                    await world.close()
                    desk = await world.open()
                    continue
                marks = (practice.store.snapshot(), housing.store.snapshot())
                # A refusal (a second outcome, say) is fine: the servers tell what happened.
                with contextlib.suppress(HealthyHomesError):
                    await _apply(desk, world, model, event)
                _check_practice(practice.store, marks[0], model)
                _check_housing(housing.store, marks[1], model)
                previous = event
        finally:
            await world.close()


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(EVENT, min_size=6, max_size=24))
def test_no_referral_without_consent_and_no_flag_inside_a_window(
    servers: tuple[RunningMockServer, RunningMockServer], events: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_run(events, *servers))
