"""The flags' :class:`~healthy_homes.flags.capacity.CapacityProvider`, read from an inbox.

``GET {inbox}/teams/{team}/capacity`` with the team's bearer token says how many new
referrals a week the team takes and how many arrived this week; the free places left
become the flags' throttle. When the inbox cannot be reached the last answer stands
(or no limit, before any answer): a housing outage must not silence every prompt.
"""

from __future__ import annotations

import httpx

from healthy_homes.flags.capacity import HttpCapacity
from healthy_homes.flags.capacity import capacity_from_json as capacity_from_json


class InboxCapacity(HttpCapacity):
    """Capacity of one housing team, read over HTTP from its inbox with the team's token."""

    def __init__(
        self,
        inbox_url: str,
        team: str,
        token: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(
            f"{inbox_url.rstrip('/')}/teams/{team}/capacity",
            headers={"Authorization": f"Bearer {token}"},
            client=client,
            timeout=timeout,
        )
        self.team = team
