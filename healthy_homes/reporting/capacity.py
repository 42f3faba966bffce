"""Before go-live: will the referrals swamp the housing team?

Per practice and week: register patients seen (``appointment_rate_per_week``), of whom
at most ``max_new_flags_per_day`` x 7 can have a new flag raised for them, so
``prompts = min(seen, cap x 7)``; then ``discussions = prompts x shown_to_discussed``
and ``referrals = discussions x discussed_to_referred``. Once everyone has been asked,
a patient is asked again only after the decline window, so prompts fall to at most
``patients / (decline_suppression_days / 7)`` a week. Each housing service's practices
are summed against its weekly capacity, and a daily cap that fits is worked out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select

from healthy_homes.config.models import FlagRulesConfig, ReportingConfig, Settings
from healthy_homes.store.db import Database
from healthy_homes.store.models import HousingTeam, RegisterMembership


@dataclass(frozen=True)
class PracticeLoad:
    """One practice's expected weekly flow."""

    practice: str
    service: str
    patients: int
    seen: float
    prompts: float
    prompts_later: float
    discussions: float
    referrals: float
    referrals_later: float


@dataclass
class ServiceVerdict:
    """One housing service: expected referrals a week against its capacity."""

    service: str
    capacity: int | None
    referrals: float = 0.0
    referrals_later: float = 0.0
    practices: list[PracticeLoad] = field(default_factory=list)
    fitting_cap: int | None = None

    @property
    def swamped(self) -> bool | None:
        """Whether referrals exceed capacity in the first weeks (None: capacity unknown)."""
        return None if self.capacity is None else self.referrals > self.capacity


def practice_load(
    practice: str,
    service: str,
    patients: int,
    rules: FlagRulesConfig,
    assumptions: ReportingConfig,
    cap_per_day: int | None = None,
) -> PracticeLoad:
    """The weekly flow at one practice with ``patients`` on the flagged registers."""
    cap = rules.max_new_flags_per_day if cap_per_day is None else cap_per_day
    seen = patients * assumptions.appointment_rate_per_week
    prompts = min(seen, cap * 7.0)
    window_weeks = max(rules.decline_suppression_days / 7.0, 1.0)
    prompts_later = min(prompts, patients / window_weeks)
    per_prompt = assumptions.shown_to_discussed * assumptions.discussed_to_referred
    return PracticeLoad(
        practice=practice,
        service=service,
        patients=patients,
        seen=seen,
        prompts=prompts,
        prompts_later=prompts_later,
        discussions=prompts * assumptions.shown_to_discussed,
        referrals=prompts * per_prompt,
        referrals_later=prompts_later * per_prompt,
    )


def _fitting_cap(
    verdict: ServiceVerdict, rules: FlagRulesConfig, assumptions: ReportingConfig
) -> int:
    """The largest daily cap (up to the configured one) whose referrals fit the capacity."""
    assert verdict.capacity is not None
    for cap in range(rules.max_new_flags_per_day, 0, -1):
        total = sum(
            practice_load(p.practice, p.service, p.patients, rules, assumptions, cap).referrals
            for p in verdict.practices
        )
        if total <= verdict.capacity:
            return cap
    return 0


def estimate(
    patients: Mapping[str, int],
    services: Mapping[str, str],
    capacities: Mapping[str, int | None],
    rules: FlagRulesConfig,
    assumptions: ReportingConfig,
) -> list[ServiceVerdict]:
    """Verdicts per housing service, from register sizes and each practice's service."""
    verdicts: dict[str, ServiceVerdict] = {}
    for practice in sorted(patients):
        service = services[practice]
        verdict = verdicts.setdefault(service, ServiceVerdict(service, capacities.get(service)))
        load = practice_load(practice, service, patients[practice], rules, assumptions)
        verdict.practices.append(load)
        verdict.referrals += load.referrals
        verdict.referrals_later += load.referrals_later
    for verdict in verdicts.values():
        if verdict.swamped:
            verdict.fitting_cap = _fitting_cap(verdict, rules, assumptions)
    return [verdicts[k] for k in sorted(verdicts)]


def register_sizes(db: Database, settings: Settings) -> dict[str, int]:
    """Patients on each practice's flagged registers, as the last sync stored them."""
    sizes: dict[str, int] = {}
    with db.session() as session:
        for practice in settings.practices:
            names = settings.flags.registers or practice.registers
            sizes[practice.ods_code] = session.exec(
                select(func.count(func.distinct(RegisterMembership.patient_id))).where(
                    RegisterMembership.practice_ods == practice.ods_code,
                    col(RegisterMembership.active),
                    col(RegisterMembership.register_name).in_(names),
                )
            ).one()
    return sizes


def services_of(settings: Settings) -> dict[str, str]:
    """Each practice's housing service id (its own, else the first configured)."""
    default = settings.housing_services[0].id if settings.housing_services else "(none)"
    return {p.ods_code: p.housing_service or default for p in settings.practices}


def capacities_of(db: Database, settings: Settings) -> dict[str, int | None]:
    """Weekly capacity per service: configuration first, else the housing inbox's team."""
    found: dict[str, int | None] = {}
    with db.session() as session:
        for service in settings.housing_services:
            configured = settings.reporting.housing_capacity_per_week.get(service.id)
            if configured is not None:
                found[service.id] = configured
                continue
            team = session.get(HousingTeam, service.id)
            found[service.id] = team.capacity_per_week if team is not None else None
    return found
