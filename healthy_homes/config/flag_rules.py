"""The ``[flags]`` section: the versioned rule set that decides who is flagged.

Every flag records ``rule_set_version``, so a practice can compare rule sets the way
the North Tyneside pilot had to (150 discussions and 6 referrals with the first one).
See docs/configuration.md for each key.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_REGISTER = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
Days = Annotated[int, Field(ge=0, le=3650)]


class FlagRulesConfig(BaseModel):
    """Which patients get a flag, how often they are asked again, and how many a day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_set_version: str = Field(
        default="2026.1", min_length=1, max_length=40, description="recorded on every flag"
    )
    max_new_flags_per_day: Annotated[int, Field(ge=0)] = 50
    registers: list[str] | None = Field(
        default=None,
        description="registers that raise flags (default: every register the practice reads)",
    )
    min_age: int | None = Field(default=None, ge=0, le=130, description="youngest flagged age")
    max_age: int | None = Field(default=None, ge=0, le=130, description="oldest flagged age")
    decline_suppression_days: Days = Field(
        default=365, description="not asked again for this long after declining (or withdrawing)"
    )
    dismiss_suppression_days: Days = Field(
        default=90, description="not flagged again for this long after a dismissal"
    )
    not_appropriate_suppression_days: Days = Field(
        default=365, description="not flagged again for this long after 'not appropriate'"
    )
    accepted_suppression_days: Days = Field(
        default=365, description="not flagged again for this long after a referral was made"
    )
    snooze_days: Days = Field(
        default=1, description="'discuss next time' hides the prompt for this long"
    )
    block_while_referral_open: bool = Field(
        default=True, description="no flag while a referral to housing is still open"
    )
    throttle_on_capacity: bool = Field(
        default=True,
        description="raise no more new flags than the housing service says it has room for",
    )
    register_weights: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: {"high_risk": 2},
        description="priority weight of each register (default 1); frailty counts double",
    )
    warning_priority: int = Field(
        default=3, ge=1, description="priority at which a card is a 'warning' rather than 'info'"
    )

    @field_validator("registers")
    @classmethod
    def _register_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not _REGISTER.match(name):
                raise ValueError(f"'{name}' is not a register name (lower case, e.g. 'copd')")
        return value

    @model_validator(mode="after")
    def _age_band(self) -> FlagRulesConfig:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age must not be above max_age")
        return self

    def window(self, outcome: str) -> timedelta | None:
        """How long an outcome keeps a patient from being flagged again (None: not at all)."""
        days = {
            "declined": self.decline_suppression_days,
            "withdrawn": self.decline_suppression_days,
            "dismissed": self.dismiss_suppression_days,
            "not-appropriate": self.not_appropriate_suppression_days,
            "accepted": self.accepted_suppression_days,
        }.get(outcome)
        return None if days is None else timedelta(days=days)
