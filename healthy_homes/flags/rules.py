"""The flag rule: who to prompt about, with reasons a clinician can read.

Pure functions over what the store knows (register memberships, the patient's past
offers) and the Patient resource; the rule set (``[flags]``) is versioned and the
version is recorded on every flag it raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from healthy_homes.config.flag_rules import FlagRulesConfig
from healthy_homes.fhir.client import JSON
from healthy_homes.fhir.resources import parse_date
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.store.models import RegisterMembership

#: Why-not texts, also the keys of FlagReport.skipped.
OPEN_FLAG = "already flagged"
OPEN_REFERRAL = "referral still open"
NOT_INCLUDED = "no register included in the rule set"
OUTSIDE_AGE = "outside the age band"
SUPPRESSED = {
    "declined": "declined recently",
    "withdrawn": "withdrew consent recently",
    "dismissed": "dismissed recently",
    "not-appropriate": "judged not appropriate recently",
    "accepted": "referred recently",
}


@dataclass(frozen=True)
class Offer:
    """A past conclusion about a patient: what it was and when."""

    outcome: str
    at: datetime


@dataclass(frozen=True)
class History:
    """What the store knows about one patient that the rule needs."""

    open_flag: bool = False
    open_referral: bool = False
    offers: tuple[Offer, ...] = ()

    @property
    def last_offer(self) -> Offer | None:
        """The most recent conclusion, if any."""
        return max(self.offers, key=lambda o: o.at, default=None)


@dataclass(frozen=True)
class Decision:
    """Whether to flag a patient, and why (or why not)."""

    flag: bool
    reasons: list[str] = field(default_factory=list)
    registers: list[str] = field(default_factory=list)
    why_not: str | None = None
    priority: int = 0


def patient_is_current(patient: JSON) -> str | None:
    """Why a patient cannot be flagged at all (deceased, left the practice), or None."""
    if patient.get("deceasedBoolean") or patient.get("deceasedDateTime"):
        return "deceased"
    if patient.get("active") is False:
        return "no longer registered"
    return None


def suppression(history: History, rules: FlagRulesConfig, now: datetime) -> Offer | None:
    """The past conclusion that still keeps this patient from a new flag, if any."""
    for offer in sorted(history.offers, key=lambda o: o.at, reverse=True):
        window = rules.window(offer.outcome)
        if window is not None and offer.at <= now < offer.at + window:
            return offer
    return None


def blocked(history: History, rules: FlagRulesConfig, now: datetime) -> str | None:
    """Why the store alone rules a new flag out (before reading the Patient), or None."""
    if history.open_flag:
        return OPEN_FLAG
    if rules.block_while_referral_open and history.open_referral:
        return OPEN_REFERRAL
    offer = suppression(history, rules, now)
    return SUPPRESSED.get(offer.outcome, "suppressed") if offer else None


def included(memberships: list[RegisterMembership], rules: FlagRulesConfig) -> list[str]:
    """Register names of these memberships that the rule set includes."""
    wanted = None if rules.registers is None else set(rules.registers)
    return sorted(
        {m.register_name for m in memberships if wanted is None or m.register_name in wanted}
    )


def priority_of(registers: list[str], rules: FlagRulesConfig) -> int:
    """Several registers and frailty rank higher: the sum of the registers' weights."""
    return sum(rules.register_weights.get(name, 1) for name in registers)


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _months(days: int) -> str:
    if days % 365 == 0:
        years = days // 365
        return "12 months" if years == 1 else f"{years * 12} months"
    return f"{round(days / 30.44)} months" if days >= 60 else f"{days} days"


def offer_reason(history: History, rules: FlagRulesConfig, now: datetime) -> str:
    """The offer history as a clinician reads it."""
    last = history.last_offer
    horizon = _months(rules.decline_suppression_days)
    if last is None or (now - last.at).days >= rules.decline_suppression_days:
        return f"not offered in the last {horizon}"
    return f"last offered {last.at:%b %Y} ({last.outcome.replace('-', ' ')})"


def decide(
    memberships: list[RegisterMembership],
    patient: JSON,
    registers: dict[str, RegisterDefinition],
    *,
    rules: FlagRulesConfig,
    history: History,
    now: datetime,
) -> Decision:
    """Flag a patient on an included register, in its age band, not suppressed or busy."""
    why = blocked(history, rules, now)
    if why:
        return Decision(False, why_not=why)
    unavailable = patient_is_current(patient)
    if unavailable:
        return Decision(False, why_not=unavailable)
    names = [n for n in included(memberships, rules) if n in registers]
    if not names:
        return Decision(False, why_not=NOT_INCLUDED)
    birth, today = parse_date(patient.get("birthDate")), now.date()
    if rules.min_age is not None or rules.max_age is not None:
        age = _age(birth, today) if birth else None
        low, high = rules.min_age or 0, rules.max_age if rules.max_age is not None else 200
        if age is None or not low <= age <= high:
            return Decision(False, why_not=OUTSIDE_AGE)
    names = [n for n in names if registers[n].age_ok(birth, today)]
    if not names:
        return Decision(False, why_not=OUTSIDE_AGE)
    since = {m.register_name: m.since for m in memberships}
    reasons = []
    for name in names:
        start = since.get(name)
        reasons.append(
            f"On {registers[name].title} register" + (f" since {start.year}" if start else "")
        )
    reasons.append(offer_reason(history, rules, now))
    return Decision(True, reasons=reasons, registers=names, priority=priority_of(names, rules))
