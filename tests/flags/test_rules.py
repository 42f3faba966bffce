"""The flag rule as a pure function: reasons, suppression windows, age band, priority."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from healthy_homes.config.models import FlagRulesConfig
from healthy_homes.flags.capacity import HousingCapacity
from healthy_homes.flags.rules import History, Offer, decide
from healthy_homes.store.models import RegisterMembership
from tests.flags.world import NOW, patient, registers

REGISTERS = {r.name: r for r in registers()}
RULES = FlagRulesConfig()


def member(register: str, since: date | None = date(2019, 5, 1)) -> RegisterMembership:
    return RegisterMembership(
        practice_ods="A12345", register_name=register, patient_id="p1", since=since, updated_at=NOW
    )


def run(memberships, history=History(), rules=RULES, **patient_fields):  # type: ignore[no-untyped-def]
    return decide(
        memberships,
        patient("p1", 0, **patient_fields),
        REGISTERS,
        rules=rules,
        history=history,
        now=NOW,
    )


def test_reasons_read_like_a_clinician_would_say_them() -> None:
    decision = run([member("copd")])
    assert decision.flag
    assert decision.reasons == [
        "On Chronic obstructive pulmonary disease register since 2019",
        "not offered in the last 12 months",
    ]
    assert decision.registers == ["copd"]


def test_an_older_offer_is_named() -> None:
    dismissed = History(offers=(Offer("dismissed", NOW - timedelta(days=120)),))
    decision = run([member("copd")], dismissed)
    assert decision.flag
    assert decision.reasons[-1] == "last offered Jul 2026 (dismissed)"


@pytest.mark.parametrize(
    ("outcome", "days_ago", "flagged"),
    [
        ("declined", 364, False),
        ("declined", 365, True),
        ("withdrawn", 200, False),
        ("dismissed", 89, False),
        ("dismissed", 90, True),
        ("not-appropriate", 364, False),
        ("accepted", 300, False),
        ("snoozed", 0, True),  # a snooze keeps the old flag; it does not suppress a new one
    ],
)
def test_suppression_windows(outcome: str, days_ago: int, flagged: bool) -> None:
    history = History(offers=(Offer(outcome, NOW - timedelta(days=days_ago)),))
    assert run([member("copd")], history).flag is flagged


def test_windows_are_configurable() -> None:
    rules = FlagRulesConfig(decline_suppression_days=30, dismiss_suppression_days=7)
    declined = History(offers=(Offer("declined", NOW - timedelta(days=31)),))
    assert run([member("copd")], declined, rules).flag


def test_open_flag_and_open_referral_block() -> None:
    assert run([member("copd")], History(open_flag=True)).why_not == "already flagged"
    referred = History(open_referral=True)
    assert run([member("copd")], referred).why_not == "referral still open"
    lenient = FlagRulesConfig(block_while_referral_open=False)
    assert run([member("copd")], referred, lenient).flag


def test_registers_included_and_age_band() -> None:
    only_falls = FlagRulesConfig(registers=["falls"])
    assert run([member("copd")], rules=only_falls).why_not == "no register included in the rule set"
    over_65 = FlagRulesConfig(min_age=65)
    assert not run([member("copd")], rules=over_65, birth="1990-01-01").flag
    assert run([member("copd")], rules=over_65, birth="1950-01-01").flag
    # A register's own band (asthma from 6) still applies.
    assert not run([member("asthma")], birth="2023-01-01").flag


def test_priority_several_registers_and_frailty() -> None:
    one = run([member("copd")])
    two = run([member("copd"), member("asthma")])
    frail = run([member("copd"), member("high_risk")])
    assert (one.priority, two.priority, frail.priority) == (1, 2, 3)


def test_deceased_or_departed_patients_are_never_flagged() -> None:
    assert run([member("copd")], deceasedDateTime="2026-01-01").why_not == "deceased"
    assert run([member("copd")], active=False).why_not == "no longer registered"


def test_capacity_limits_new_flags() -> None:
    assert HousingCapacity().allow(10) == 10
    assert HousingCapacity(accepting=False).allow(10) == 0
    assert HousingCapacity(free_places=3).allow(10) == 3
    assert HousingCapacity(free_places=-1).allow(10) == 0
