"""The housing service's capacity, as an input to how many new flags are raised.

Referrals overwhelm stretched services (Housing+ in Sheffield waited ten weeks), so a
service that says it is full gets no new prompts raised for it. The figure itself is
read elsewhere (later: from the housing inbox); here it is only a value and a source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class HousingCapacity:
    """What the housing service last said about taking new referrals."""

    accepting: bool = True
    free_places: int | None = None  # None: the service did not give a number
    as_of: datetime | None = None

    def allow(self, wanted: int) -> int:
        """How many of ``wanted`` new flags fit: none when full, at most the free places."""
        if not self.accepting:
            return 0
        if self.free_places is None:
            return wanted
        return max(0, min(wanted, self.free_places))


UNLIMITED = HousingCapacity()


@runtime_checkable
class CapacityProvider(Protocol):
    """Anything that can say, for a practice, how much room its housing service has."""

    async def capacity(self, practice: str) -> HousingCapacity:
        """The latest capacity of the housing service this practice refers to."""
        ...


class FixedCapacity:
    """A provider that always answers the same value (configuration, tests)."""

    def __init__(self, value: HousingCapacity) -> None:
        self.value = value

    async def capacity(self, practice: str) -> HousingCapacity:
        """The fixed value."""
        return self.value


async def resolve_capacity(
    source: HousingCapacity | CapacityProvider | None, practice: str
) -> HousingCapacity:
    """A capacity value from a value, a provider, or nothing (no limit)."""
    if source is None:
        return UNLIMITED
    if isinstance(source, HousingCapacity):
        return source
    return await source.capacity(practice)
