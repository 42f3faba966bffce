"""Register rules: a Condition's role for a register, and who is on it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from healthy_homes.config.models import PracticeConfig, RegisterConfig, Settings
from healthy_homes.errors import ConfigError
from healthy_homes.registers.codesets import load_codeset
from healthy_homes.registers.definitions import (
    RegisterDefinition,
    definition_from_config,
    resolve_registers,
)
from healthy_homes.registers.rules import Member, Role, classify, membership, role_of

SCT = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _register(name: str, **kwargs) -> RegisterDefinition:
    codeset = load_codeset(name)
    return RegisterDefinition(name, codeset, codeset.min_age, codeset.max_age, **kwargs)


def _condition(code: str, clinical: str | None = "active", **extra) -> dict:
    resource = {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"coding": [{"system": SCT, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    return resource


@pytest.mark.parametrize(
    ("register", "code"),
    [
        ("copd", "13645005"),
        ("copd", "185086009"),  # chronic obstructive bronchitis
        ("copd", "87433001"),  # pulmonary emphysema
        ("asthma", "195967001"),
        ("asthma", "233678006"),  # childhood asthma
    ],
)
def test_descendant_concepts_are_diagnoses(register: str, code: str) -> None:
    assert role_of(_condition(code), _register(register)) is Role.DIAGNOSIS
    other = "asthma" if register == "copd" else "copd"
    assert role_of(_condition(code), _register(other)) is None


@pytest.mark.parametrize("clinical", ["resolved", "inactive", "remission"])
def test_resolved_or_inactive_diagnoses_do_not_count(clinical: str) -> None:
    assert role_of(_condition("13645005", clinical), _register("copd")) is None


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_or_entered_in_error_do_not_count(verification: str) -> None:
    condition = _condition(
        "13645005",
        verificationStatus={"coding": [{"system": VERIFICATION, "code": verification}]},
    )
    assert role_of(condition, _register("copd")) is None


def test_abatement_or_other_system_do_not_count() -> None:
    copd = _register("copd")
    assert role_of(_condition("13645005", abatementDateTime="2024-01-01"), copd) is None
    other_system = _condition("13645005")
    other_system["code"]["coding"][0]["system"] = "http://read.codes"
    assert role_of(other_system, copd) is None
    assert role_of(_condition("13645005", clinical=None), copd) is Role.DIAGNOSIS


def test_configured_clinical_statuses_widen_the_register() -> None:
    copd = _register("copd", clinical_statuses=frozenset({"active", "inactive"}))
    assert role_of(_condition("13645005", "inactive"), copd) is Role.DIAGNOSIS


def test_resolved_codes_take_patients_off_unless_rediagnosed_later() -> None:
    copd = _register("copd")
    assert role_of(_condition("394702007"), copd) is Role.RESOLVED
    diagnosed = ("c1", Role.DIAGNOSIS, date(2020, 1, 1))
    assert membership([diagnosed, ("c2", Role.RESOLVED, date(2022, 1, 1))]) is None
    assert membership([diagnosed, ("c2", Role.RESOLVED, date(2020, 1, 1))]) is None
    again = ("c3", Role.DIAGNOSIS, date(2023, 1, 1))
    member = membership([diagnosed, ("c2", Role.RESOLVED, date(2022, 1, 1)), again])
    assert member == Member(date(2020, 1, 1), ("c1", "c3"))
    ignored = _register("copd", honour_resolved_codes=False)
    assert role_of(_condition("394702007"), ignored) is None


def test_exclusions_and_patient_status() -> None:
    asthma = _register("asthma", exclusions=load_codeset("high_risk"))
    assert role_of(_condition("160689007"), asthma) is Role.EXCLUSION
    assert role_of(_condition("160689007", "resolved"), asthma) is None
    diagnosed = ("c1", Role.DIAGNOSIS, date(2020, 1, 1))
    assert membership([diagnosed, ("x", Role.EXCLUSION, None)]) is None
    assert membership([diagnosed], current=False) is None
    assert membership([diagnosed]) == Member(date(2020, 1, 1), ("c1",))


def test_group_entries_put_patients_on_the_register() -> None:
    assert membership([("p1", Role.MEMBER, date(2021, 3, 1))]) == Member(date(2021, 3, 1), ())
    assert membership([("p1", Role.MEMBER, None)], current=False) is None


def test_classify_needs_an_id_and_a_patient_subject() -> None:
    copd = _register("copd")
    found = classify(_condition("13645005", onsetDateTime="2019-06"), copd)
    assert found is not None and found.patient_id == "p1" and found.noted == date(2019, 6, 1)
    group_subject = _condition("13645005", subject={"reference": "Group/g1"})
    assert classify(group_subject, copd) is None


def test_search_tokens_cover_every_role_and_split_long_clusters() -> None:
    copd = _register("copd", exclusions=load_codeset("falls"))
    [token] = copd.search_tokens()
    assert "394702007" in token and "161898004" in token and "13645005" in token
    parts = copd.search_tokens(max_chars=80)
    assert len(parts) > 1 and all(len(p) <= 80 for p in parts)
    assert set(",".join(parts).split(",")) == set(token.split(","))


def test_fingerprint_changes_with_the_rules() -> None:
    plain = _register("copd")
    assert plain.fingerprint() == _register("copd").fingerprint()
    assert plain.fingerprint() != _register("copd", honour_resolved_codes=False).fingerprint()
    assert (
        plain.fingerprint()
        != _register("copd", clinical_statuses=frozenset({"active"})).fingerprint()
    )


def test_practice_turns_registers_on_and_off_and_adds_its_own(tmp_path: Path) -> None:
    own = tmp_path / "housebound.json"
    own.write_text(
        json.dumps(
            {
                "name": "housebound",
                "title": "Housebound",
                "version": "1",
                "source": "Practice's own list, agreed 2026",
                "codes": [{"code": "160689007", "display": "Housebound"}],
            }
        )
    )
    settings = Settings.model_validate(
        {
            "registers": [
                {"name": "falls", "codeset": "falls", "enabled": False},
                {"name": "asthma", "codeset": "asthma", "min_age": 12, "title": "Asthma (12+)"},
            ],
            "practices": [
                {
                    "ods_code": "A12345",
                    "name": "x",
                    "fhir_base_url": "http://x/fhir",
                    "registers": ["copd", "asthma", "falls"],
                    "own_registers": [
                        {"name": "housebound", "codeset": str(own), "exclusion_codeset": "falls"}
                    ],
                }
            ],
        }
    )
    registers = resolve_registers(settings, settings.practices[0])
    assert [r.name for r in registers] == ["copd", "asthma", "housebound"]
    asthma = registers[1]
    assert asthma.min_age == 12 and asthma.title == "Asthma (12+)"
    assert registers[2].exclusion_codes() == {(SCT, c.code) for c in load_codeset("falls").codes}


def test_register_config_checks() -> None:
    with pytest.raises(ValueError, match="min_age"):
        RegisterConfig(name="x", codeset="copd", min_age=30, max_age=20)
    with pytest.raises(ValueError, match="clinical_statuses"):
        RegisterConfig.model_validate({"name": "x", "codeset": "copd", "clinical_statuses": []})
    cfg = RegisterConfig(name="copd2", codeset="copd", resolved_codes=False)
    assert definition_from_config(cfg).resolved_codes() == frozenset()


def test_practice_register_source_and_groups_are_checked() -> None:
    base = {"ods_code": "A12345", "name": "x", "fhir_base_url": "http://x/fhir"}
    with pytest.raises(ValueError, match=r"groups\.copd"):
        PracticeConfig.model_validate({**base, "groups": {"copd": "register-copd"}})
    with pytest.raises(ValueError, match="register_source"):
        PracticeConfig.model_validate({**base, "register_source": "fax"})
    with pytest.raises(ValueError, match="unknown register 'gout'"):
        Settings.model_validate({"practices": [{**base, "groups": {"gout": "Group/g"}}]})


def test_sync_settings_from_toml(tmp_path: Path) -> None:
    from healthy_homes.config.loader import load_settings

    path = tmp_path / "hh.toml"
    path.write_text(
        "[sync]\nincremental_minutes = 2\nappointment_seconds = 30\nreconcile_at = 03:15:00\n"
        'timezone = "Europe/London"\noverlap_seconds = 120\nmax_concurrent_practices = 8\n'
        "[[practices]]\nods_code = 'A12345'\nname = 'x'\nfhir_base_url = 'http://x/fhir'\n"
        "register_source = 'bulk'\ntimeout_seconds = 60\n"
        "[practices.groups]\ncopd = 'Group/register-copd'\n"
    )
    settings = load_settings(path, env=False)
    assert settings.sync.reconcile_at.hour == 3 and settings.sync.overlap_seconds == 120
    assert settings.practices[0].register_source == "bulk"
    path.write_text('[sync]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match=r"sync.timezone"):
        load_settings(path, env=False)
