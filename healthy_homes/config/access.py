"""The ``[access]`` section: how long sessions live and when sign-in pauses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AccessConfig(BaseModel):
    """Session timeouts, sign-in lock-out and cookie settings for every app."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_minutes: float = Field(
        default=30, gt=0, le=24 * 60, description="a session unused this long ends"
    )
    absolute_hours: float = Field(
        default=10, gt=0, le=7 * 24, description="a session ends this long after sign-in"
    )
    username_failures: int = Field(
        default=5, ge=1, le=1000, description="failed sign-ins per username before it pauses"
    )
    address_failures: int = Field(
        default=20,
        ge=1,
        le=100000,
        description="failed sign-ins per client address before it pauses",
    )
    lockout_window_minutes: float = Field(
        default=15, gt=0, le=24 * 60, description="failures count for this long"
    )
    secure_cookies: bool = Field(
        default=False,
        description="mark cookies Secure (__Host-) even when the proxy does not say HTTPS",
    )

    @model_validator(mode="after")
    def _idle_within_absolute(self) -> AccessConfig:
        if self.idle_minutes > self.absolute_hours * 60:
            raise ValueError("idle_minutes must not be longer than absolute_hours")
        return self
