"""The ``[reporting]`` section: assumptions behind the capacity estimate before go-live.

The defaults come from the North Tyneside Safe and Healthy Homes pilot (Housing LIN
case study 3, ../shared/seeds 002): its first rule set led to 150 discussions and 6
referrals, so 6/150 = 0.04 of discussions became referrals. Replace them with a
practice's own figures once the funnel report has a few months of them.
See docs/configuration.md for each key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Share = Annotated[float, Field(ge=0.0, le=1.0)]

#: The pilot's first rule set: 6 referrals from 150 discussions.
PILOT_DISCUSSED_TO_REFERRED = 6 / 150


class ReportingConfig(BaseModel):
    """Conversion assumptions and housing teams' weekly capacity for ``report capacity``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    appointment_rate_per_week: Share = Field(
        default=0.1,
        description="share of register patients seen in a week (0.1: about five times a "
        "year); set it from the practice's appointment book",
    )
    shown_to_discussed: Share = Field(
        default=1.0,
        description="share of prompts shown that lead to a discussion with the patient",
    )
    discussed_to_referred: Share = Field(
        default=PILOT_DISCUSSED_TO_REFERRED,
        description="share of discussions that become a referral (pilot: 6 of 150)",
    )
    housing_capacity_per_week: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="new referrals each housing service (by id) can take a week; a service "
        "not named here is looked up in the housing inbox's tables, if they share the store",
    )
