"""Configuration: schema, loading and the example file."""

from healthy_homes.config.loader import load_settings
from healthy_homes.config.models import (
    AuthConfig,
    FlagRulesConfig,
    HousingServiceConfig,
    PracticeConfig,
    RegisterConfig,
    Settings,
    StorageConfig,
)

__all__ = [
    "AuthConfig",
    "FlagRulesConfig",
    "HousingServiceConfig",
    "PracticeConfig",
    "RegisterConfig",
    "Settings",
    "StorageConfig",
    "load_settings",
]
