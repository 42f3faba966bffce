"""The ``[retention]`` section: how long patient data is kept before it is purged."""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field


class RetentionConfig(BaseModel):
    """Retention periods (days) and when the nightly purge runs; see docs/configuration.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    never_referred_days: int = Field(
        default=400,
        ge=30,
        description=(
            "a patient never referred is purged once nothing about them has changed for this "
            "long (longer than the flag suppression periods, so a decline is still honoured)"
        ),
    )
    referral_days: int = Field(
        default=730,
        ge=30,
        description="a referral (and its consent) is purged this long after it was sent or closed",
    )
    housing_referral_days: int = Field(
        default=730,
        ge=30,
        description="the housing inbox purges a referral this long after the work ended",
    )
    nightly: bool = Field(default=True, description="run the purge on the connector's schedule")
    run_at: time = Field(
        default=time(3, 30), description="local time ([sync] timezone) of the nightly purge"
    )
    reclaim_space: bool = Field(
        default=True, description="VACUUM after a purge that removed rows, so the space is freed"
    )
