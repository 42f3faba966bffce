"""Load configuration from one TOML file plus environment overrides.

Environment variables named ``HEALTHY_HOMES__<SECTION>__<KEY>`` override the file
(pydantic-settings, https://docs.pydantic.dev/latest/concepts/pydantic_settings/);
lists such as ``practices`` take JSON.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from healthy_homes.config.models import Settings
from healthy_homes.errors import ConfigError

ENV_PREFIX = "HEALTHY_HOMES__"
CONFIG_ENV = "HEALTHY_HOMES_CONFIG"
DEFAULT_PATH = Path("healthy-homes.toml")


def _settings_class(path: Path | None) -> type[BaseSettings]:
    """Build a settings class reading ``path`` then the environment."""

    class _FileAndEnv(BaseSettings, Settings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX,
            env_nested_delimiter="__",
            extra="forbid",
            frozen=True,
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    return _FileAndEnv


def describe_validation_error(error: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines that name each key, its problem and what is expected.

    Input values are deliberately left out: they may be secrets.
    """
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against docs/configuration.md"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, *, env: bool = True) -> Settings:
    """Load and validate settings; raise ConfigError naming every bad key."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    file_path = Path(path) if path is not None else None
    if file_path is not None:
        if not file_path.is_file():
            raise ConfigError(
                f"configuration file {file_path} not found; "
                "expected a TOML file (write one with 'healthy-homes init')"
            )
        try:
            tomllib.loads(file_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {file_path} is not valid TOML: {exc}") from exc
    source = str(file_path) if file_path else "the environment"
    try:
        if env:
            loaded: Any = _settings_class(file_path)()
            return Settings.model_validate(loaded.model_dump())
        data = tomllib.loads(file_path.read_text(encoding="utf-8")) if file_path else {}
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def resolve_settings(path: Path | None) -> Settings:
    """Settings from ``path``, else $HEALTHY_HOMES_CONFIG, else ./healthy-homes.toml if present."""
    if path is None and not os.environ.get(CONFIG_ENV) and DEFAULT_PATH.is_file():
        path = DEFAULT_PATH
    return load_settings(path)
