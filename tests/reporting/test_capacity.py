"""The capacity estimate from known inputs, and the command's verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.config.models import FlagRulesConfig, ReportingConfig
from healthy_homes.reporting.capacity import estimate, practice_load
from healthy_homes.store.db import Database
from healthy_homes.store.models import RegisterMembership

RULES = FlagRulesConfig(max_new_flags_per_day=10)
PILOT = ReportingConfig()  # 10% seen a week, every prompt discussed, 6 in 150 referred


def test_pilot_default_is_six_referrals_in_150_discussions() -> None:
    assert PILOT.discussed_to_referred == pytest.approx(0.04)


def test_a_practice_s_week_follows_the_cap_then_the_decline_window() -> None:
    big = practice_load("A00001", "shh", 1000, RULES, PILOT)
    assert big.seen == pytest.approx(100)
    assert big.prompts == pytest.approx(70)  # 10 a day is the limit, not the 100 seen
    assert big.referrals == pytest.approx(2.8)
    assert big.referrals_later == pytest.approx(1000 / (365 / 7) * 0.04)
    small = practice_load("B00002", "shh", 300, RULES, PILOT)
    assert small.prompts == pytest.approx(30)  # fewer seen than the cap allows
    assert small.referrals == pytest.approx(1.2)


def test_two_practices_swamp_a_team_of_three_a_week_and_a_cap_of_six_fits() -> None:
    sizes = {"A00001": 1000, "B00002": 300}
    services = dict.fromkeys(sizes, "shh")
    [verdict] = estimate(sizes, services, {"shh": 3}, RULES, PILOT)
    assert verdict.referrals == pytest.approx(4.0)
    assert verdict.swamped is True
    # cap 6: 42 x 0.04 + 30 x 0.04 = 2.88 <= 3; cap 7: 49 x 0.04 + 1.2 = 3.16 > 3
    assert verdict.fitting_cap == 6
    [roomy] = estimate(sizes, services, {"shh": 5}, RULES, PILOT)
    assert roomy.swamped is False and roomy.fitting_cap is None
    [unknown] = estimate(sizes, services, {}, RULES, PILOT)
    assert unknown.swamped is None


def _config(tmp_path: Path, capacity: int) -> Path:
    path = tmp_path / "healthy-homes.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "hh.db"}"\n'
        "[flags]\nmax_new_flags_per_day = 10\n"
        f"[reporting]\nhousing_capacity_per_week = {{shh = {capacity}}}\n"
        '[[practices]]\nods_code = "A00001"\nname = "One"\nfhir_base_url = "http://127.0.0.1:9/fhir"\n'
        '[[practices]]\nods_code = "B00002"\nname = "Two"\nfhir_base_url = "http://127.0.0.1:9/fhir"\n'
        '[[housing_services]]\nid = "shh"\nname = "Safe and Healthy Homes"\n'
        'fhir_base_url = "http://127.0.0.1:9/fhir"\n'
    )
    return path


def _members(url: str, practice: str, count: int) -> None:
    db = Database(url)
    db.upgrade()
    now = datetime(2026, 11, 24, tzinfo=UTC)
    with db.session() as session:
        for n in range(count):
            for register in ("copd", "asthma") if n % 4 == 0 else ("copd",):
                session.add(
                    RegisterMembership(
                        practice_ods=practice,
                        register_name=register,
                        patient_id=f"p{n}",
                        updated_at=now,
                    )
                )
    db.dispose()


def test_the_command_reads_register_sizes_from_the_store_and_says_what_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, capacity=3)
    url = f"sqlite:///{tmp_path / 'hh.db'}"
    _members(url, "A00001", 1000)  # 1,000 patients (a quarter on two registers)
    _members(url, "B00002", 300)
    assert main(["report", "capacity", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "A00001: 1000 on the flagged registers" in out
    assert "4.0 referrals a week expected against a capacity of 3: WOULD SWAMP" in out
    assert "max_new_flags_per_day = 6 (now 10)" in out
    # A smaller practice than the store says, by hand: now it fits.
    assert main(["report", "capacity", "--config", str(config), "--patients", "A00001=100"]) == 0
    assert "1.6 referrals a week expected against a capacity of 3: fits." in capsys.readouterr().out
