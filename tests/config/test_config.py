"""Configuration: TOML plus environment, with errors that name the key."""

from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.config import load_settings
from healthy_homes.config.cli import example_text
from healthy_homes.errors import ConfigError

GOOD = """
[storage]
url = "sqlite:///x.db"

[[practices]]
ods_code = "A12345"
name = "Test Surgery"
fhir_base_url = "http://127.0.0.1:8080/fhir"
housing_service = "h1"

[practices.auth]
kind = "bearer"
token = "s3cret-token-value"

[[housing_services]]
id = "h1"
name = "Housing"
fhir_base_url = "http://127.0.0.1:8081/fhir"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hh.toml"
    path.write_text(text)
    return path


def test_loads_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    practice = settings.practice("A12345")
    assert practice.registers == ["copd", "asthma", "falls", "high_risk"]
    assert settings.housing_service_for(practice).id == "h1"  # type: ignore[union-attr]


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHY_HOMES__STORAGE__URL", "postgresql+psycopg://db/hh")
    assert load_settings(write(tmp_path, GOOD)).storage.url == "postgresql+psycopg://db/hh"


def test_bad_value_names_key_problem_and_expectation(tmp_path: Path) -> None:
    text = GOOD.replace('ods_code = "A12345"', 'ods_code = "a-12"')
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    message = str(info.value)
    assert "practices.0.ods_code" in message
    assert "ODS code" in message


def test_unknown_register_and_service_are_named(tmp_path: Path) -> None:
    text = GOOD.replace('housing_service = "h1"', 'housing_service = "nope"\nregisters = ["copd"]')
    with pytest.raises(ConfigError, match="unknown housing service 'nope'"):
        load_settings(write(tmp_path, text))
    text = GOOD.replace('housing_service = "h1"', 'registers = ["gout"]')
    with pytest.raises(ConfigError, match="unknown register 'gout'"):
        load_settings(write(tmp_path, text))


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage\.uri: unknown key"):
        load_settings(write(tmp_path, GOOD.replace("url = ", "uri = ")))


def test_secrets_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert "s3cret-token-value" not in repr(settings)
    bad = GOOD.replace('kind = "bearer"', 'kind = "smart"')
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, bad))
    assert "s3cret" not in str(info.value)
    assert "client_id" in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[storage\nurl="))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_init_writes_example_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "healthy-homes.toml"
    assert main(["init", str(target)]) == 0
    assert target.read_text() == example_text()
    settings = load_settings(target)
    assert settings.practices[0].ods_code == "A12345"
    assert main(["init", str(target)]) == 1  # refuses to overwrite
    assert main(["config", "check", "--config", str(target)]) == 0


def test_cli_reports_config_errors_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace("sqlite:///x.db", "mysql://x"))
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "storage.url" in err and "sqlite:///" in err
