"""A year at several practices, through the real domain code, with its own tally.

Each practice has a mock FHIR server (in-process) holding its patients; register
membership is seeded in the store as a sync leaves it, and patients join and leave
the registers month by month. Every working day (the practices and the housing team
are closed at weekends), on a FixedClock: the sync's register count, flags raised by
the rule set, patients coming in (prompt shown, then consent, decline, not
appropriate, dismiss or "next time"), the delivery worker sending the outbox to a
housing inbox on a loopback port, housing officers accepting, turning down and
completing referrals, and the closed-loop poll bringing statuses back (on the days
when a referral was sent or an officer moved one on: on other days every Task reads as
it did at the last poll). The simulator counts what it did and what it saw happen; the
report must say the same.

The practices are small (15 to 25 patients on the registers at the start, a few joining
and leaving each month): each day costs a sync, a clinic, a delivery run and a poll on
each backend, and a few hundred flags a year already reach every stage in every month.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import col, select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import DeliveryConfig, FhirHousingService, FlagRulesConfig
from healthy_homes.connector.delivery.worker import DeliveryWorker
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import NHS_NUMBER
from healthy_homes.flags.lifecycle import raise_flags
from healthy_homes.housing import workflow
from healthy_homes.housing.app import create_housing_app
from healthy_homes.housing.teams import add_team
from healthy_homes.mock_server.server import RunningMockServer, build_server
from healthy_homes.referrals.loop import poll_statuses
from healthy_homes.referrals.transports.fhir_rest import FhirRestTransport, make
from healthy_homes.reporting.facts import month_of, record_register_counts
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.store.models import FlagRecord, HousingReferral, RegisterMembership
from healthy_homes.store.reporting_models import ANY_REGISTER
from tests.delivery.seed import nhs_number
from tests.flags.world import registers as builtin_registers

REGISTERS = ("copd", "asthma", "falls")
CLINICIAN = "Dr A Simulated"
OFFICER = "Olive Sim"
Key = tuple[str, str, str]  # practice, register, month


def _patient(ods: str, index: int) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": f"{ods}-p{index}",
        "active": True,
        "identifier": [{"system": NHS_NUMBER, "value": nhs_number(index)}],
        "name": [{"use": "official", "family": f"Simperson{index}", "given": ["Sam"]}],
        "birthDate": "1950-06-01",
        "address": [{"use": "home", "line": [f"{index} Front St"], "postalCode": "NE30 4AA"}],
        "telecom": [{"system": "phone", "value": "01910000000"}],
    }


@dataclass
class Tally:
    """What the simulation did, by (practice, register, month) and stage."""

    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    ack_seconds: dict[Key, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, keys: list[Key], stage: str) -> None:
        """One flag reached ``stage``: count it under each of its keys."""
        for practice, register, month in keys:
            self.counts[(practice, register, month, stage)] += 1

    def set_eligible(self, practice: str, register: str, month: str, patients: int) -> None:
        """The month's register size (the last one of the month stands)."""
        self.counts[(practice, register, month, "eligible")] = patients


@dataclass
class FlagTrack:
    """The simulator's own record of one flag."""

    keys: list[Key]
    stages: set[str] = field(default_factory=set)
    sent_at: datetime | None = None
    acked: bool = False


class Simulation:
    """Several practices and one housing team, driven day by day."""

    def __init__(self, db: Database, housing_db: Database, *, practices: int, seed: int) -> None:
        self.db, self.housing_db = db, housing_db
        self.rng = random.Random(seed)
        self.clock = FixedClock(datetime(2026, 1, 1, 8, 0, tzinfo=UTC))
        self.practices = [f"S{n:05d}" for n in range(1, practices + 1)]
        self.tally = Tally()
        self.flags: dict[str, FlagTrack] = {}
        self.by_referral: dict[str, str] = {}  # our referral id -> flag id
        self.members: dict[str, dict[str, set[str]]] = {p: defaultdict(set) for p in self.practices}
        self.next_patient = dict.fromkeys(self.practices, 0)
        self.caps = {p: self.rng.randint(1, 3) for p in self.practices}
        self.registers = builtin_registers()  # the code sets, read once

    # -- registers ---------------------------------------------------------------------

    def _join(self, practice: str, server_store: object, count: int) -> None:
        people = []
        for _ in range(count):
            index = self.next_patient[practice]
            self.next_patient[practice] += 1
            people.append(_patient(practice, index))
            names = self.rng.sample(REGISTERS, self.rng.choice((1, 1, 1, 2)))
            with self.db.session() as session:
                for name in names:
                    session.add(
                        RegisterMembership(
                            practice_ods=practice,
                            register_name=name,
                            patient_id=f"{practice}-p{index}",
                            condition_ids=[f"c-{practice}-{index}-{name}"],
                            updated_at=self.clock.now(),
                        )
                    )
                    self.members[practice][name].add(f"{practice}-p{index}")
        server_store.load(people)  # type: ignore[attr-defined]

    def _leave(self, practice: str) -> None:
        name = self.rng.choice(REGISTERS)
        if not self.members[practice][name]:
            return
        patient = self.rng.choice(sorted(self.members[practice][name]))
        with self.db.session() as session:
            row = session.exec(
                select(RegisterMembership).where(
                    RegisterMembership.practice_ods == practice,
                    RegisterMembership.register_name == name,
                    RegisterMembership.patient_id == patient,
                )
            ).one()
            row.active, row.updated_at = False, self.clock.now()
            session.add(row)
        self.members[practice][name].discard(patient)

    def _count_registers(self, practice: str) -> None:
        with self.db.session() as session:
            record_register_counts(session, practice, self.clock.now())
        month = month_of(self.clock.now())
        everyone: set[str] = set()
        for name in REGISTERS:
            self.tally.set_eligible(practice, name, month, len(self.members[practice][name]))
            everyone |= self.members[practice][name]
        self.tally.set_eligible(practice, ANY_REGISTER, month, len(everyone))

    # -- a flag's progress -----------------------------------------------------------------

    def _reach(self, flag_id: str, stage: str) -> None:
        track = self.flags[flag_id]
        if stage not in track.stages:
            track.stages.add(stage)
            self.tally.add(track.keys, stage)

    def _new_flag(self, flag: FlagRecord) -> None:
        month = month_of(flag.created_at)
        names = [n for n in REGISTERS if flag.patient_id in self.members[flag.practice_ods][n]]
        keys = [(flag.practice_ods, n, month) for n in names]
        keys.append((flag.practice_ods, ANY_REGISTER, month))
        self.flags[flag.id] = FlagTrack(keys)
        self.tally.add(keys, "flagged")

    async def _clinic(self, desk: ClinicianActions, open_flags: list[FlagRecord]) -> None:
        for flag in open_flags:
            if flag.snoozed_until and flag.snoozed_until > self.clock.now():
                continue
            if self.rng.random() >= 0.15:  # does the patient come in today?
                continue
            desk.mark_shown(flag.id, by=CLINICIAN)
            self._reach(flag.id, "shown")
            roll = self.rng.random()
            if roll < 0.25:
                outcome = await desk.consent(flag.id, recorded_by=CLINICIAN, send=False)
                self.by_referral[outcome.referral.id] = flag.id
                self._reach(flag.id, "offered")
                self._reach(flag.id, "consented")
            elif roll < 0.55:
                await desk.decline(flag.id, recorded_by=CLINICIAN, reason="not now")
                self._reach(flag.id, "offered")
                self._reach(flag.id, "declined")
            elif roll < 0.65:
                await desk.not_appropriate(flag.id, recorded_by=CLINICIAN, reason="in care home")
                self._reach(flag.id, "not_appropriate")
            elif roll < 0.75:
                await desk.dismiss(flag.id, recorded_by=CLINICIAN)
                self._reach(flag.id, "dismissed")
            else:
                await desk.discuss_next_time(flag.id, recorded_by=CLINICIAN)

    def _housing_day(self, team: str) -> int:
        """Officers work the open referrals; how many they moved on."""
        now = self.clock.now()
        moved = 0
        with self.housing_db.session() as session:
            rows = session.exec(
                select(HousingReferral).where(
                    HousingReferral.team_id == team,
                    col(HousingReferral.status).in_(("received", "accepted")),
                )
            ).all()
            for row in sorted(rows, key=lambda r: r.referral_identifier):
                roll = self.rng.random()
                if row.status == "received" and roll < 0.3:
                    workflow.accept(session, row, OFFICER, now)
                elif row.status == "received" and roll < 0.36:
                    workflow.decline(session, row, "not-eligible", "", OFFICER, now)
                elif row.status == "accepted" and roll < 0.15:
                    workflow.complete(session, row, ["heating-fixed"], "", OFFICER, now)
                elif row.status == "accepted" and roll < 0.18:
                    workflow.decline(session, row, "could-not-contact", "", OFFICER, now)
                else:
                    continue
                moved += 1
        return moved

    def _learnt(self, changes: list[object]) -> None:
        for change in changes:
            flag_id = self.by_referral[change.referral_id]  # type: ignore[attr-defined]
            status = change.new  # type: ignore[attr-defined]
            track = self.flags[flag_id]
            if status in ("accepted", "rejected", "completed", "failed") and not track.acked:
                track.acked = True
                assert track.sent_at is not None
                seconds = round((self.clock.now() - track.sent_at).total_seconds())
                for key in track.keys:
                    self.tally.ack_seconds[key].append(seconds)
            if status in ("accepted", "completed", "failed"):
                self._reach(flag_id, "accepted")
            if status in ("completed", "failed"):
                self._reach(flag_id, "outcome")

    # -- the year --------------------------------------------------------------------------

    async def run(self, days: int = 365) -> Tally:
        """Simulate ``days`` days and return the tally."""
        servers = {
            p: build_server(patients=0, clock=self.clock, ods_code=p) for p in self.practices
        }
        with self.housing_db.session() as session:
            token = add_team(session, "sim", "Simulated Healthy Homes", self.clock.now())
        inbox = ServerThread(
            create_housing_app(
                db=self.housing_db, csrf_secret=secrets.token_bytes(32), clock=self.clock
            ),
            "127.0.0.1",
            0,
        )
        base = inbox.start()
        service = FhirHousingService.model_validate(
            {
                "id": "sim",
                "name": "Simulated Healthy Homes",
                "fhir_base_url": f"{base}/teams/sim/fhir",
                "auth": {"kind": "bearer", "token": token},
            }
        )
        rules = FlagRulesConfig(throttle_on_capacity=False)
        worker = DeliveryWorker(self.db, [service], DeliveryConfig(), clock=self.clock)
        transport = make(service, clock=self.clock, http=None)
        clients = {
            p: FhirClient(
                "http://practice/fhir",
                practice=p,
                transport=httpx.ASGITransport(app=servers[p].app),
                clock=self.clock,
            )
            for p in self.practices
        }
        desks = {
            p: ClinicianActions(
                self.db,
                practice_ods=p,
                practice_client=clients[p],
                service=service,
                housing_client=None,
                rules=rules,
                clock=self.clock,
            )
            for p in self.practices
        }
        try:
            for p in self.practices:
                self._join(p, servers[p].store, self.rng.randint(15, 25))
            for _ in range(days):
                if self.clock.now().weekday() < 5:
                    await self._day(servers, clients, desks, rules, worker, transport, service)
                else:  # the practices and the housing team are closed at weekends
                    self.clock.set(self.clock.now() + timedelta(days=1))
        finally:
            await worker.aclose()
            await transport.aclose()
            for client in clients.values():
                await client.aclose()
            inbox.stop()
        return self.tally

    async def _day(
        self,
        servers: dict[str, RunningMockServer],
        clients: dict[str, FhirClient],
        desks: dict[str, ClinicianActions],
        rules: FlagRulesConfig,
        worker: DeliveryWorker,
        transport: FhirRestTransport,
        service: FhirHousingService,
    ) -> None:
        day = self.clock.now().replace(hour=8, minute=0, second=0, microsecond=0)
        self.clock.set(day)
        for p in self.practices:
            if self.rng.random() < 0.12:
                self._join(p, servers[p].store, self.rng.randint(1, 2))
            if self.rng.random() < 0.05:
                self._leave(p)
            self._count_registers(p)  # the nightly sync's count
            limited = rules.model_copy(update={"max_new_flags_per_day": self.caps[p]})
            report = await raise_flags(self.db, clients[p], p, self.registers, limited, self.clock)
            for patient_id in report.raised:
                with self.db.session() as session:
                    flag = session.exec(
                        select(FlagRecord)
                        .where(FlagRecord.practice_ods == p, FlagRecord.patient_id == patient_id)
                        .order_by(FlagRecord.created_at.desc())  # type: ignore[attr-defined]
                    ).first()
                assert flag is not None
                self._new_flag(flag)
        self.clock.set(day + timedelta(hours=2))
        for p in self.practices:
            with self.db.session() as session:
                open_flags = session.exec(
                    select(FlagRecord)
                    .where(
                        FlagRecord.practice_ods == p,
                        FlagRecord.status.in_(("raised", "shown", "snoozed")),  # type: ignore[attr-defined]
                    )
                    .order_by(FlagRecord.id)
                ).all()
            await self._clinic(desks[p], list(open_flags))
        self.clock.set(day + timedelta(hours=3, minutes=self.rng.randint(0, 59)))
        waiting = [
            f for f, t in self.flags.items() if "consented" in t.stages and t.sent_at is None
        ]
        stats = await worker.run_once()
        assert stats.delivered == len(waiting), (stats, len(waiting))
        for flag_id in waiting:
            self.flags[flag_id].sent_at = self.clock.now()
            self._reach(flag_id, "sent")
        self.clock.set(day + timedelta(hours=6))
        moved = self._housing_day("sim")
        self.clock.set(day + timedelta(hours=8, minutes=self.rng.randint(0, 59)))
        if stats.delivered or moved:  # else every Task reads as it did at the last poll
            changes = await poll_statuses(
                self.db, {"sim": service}, {"sim": transport}, clock=self.clock
            )
            self._learnt(list(changes))
        self.clock.set(day + timedelta(days=1))
