"""Which housing service a referral goes to: exactly one, or a reason why none.

Each ``[[housing_services]]`` entry says where it works (``postcode_districts``: outward
codes such as ``NE25`` or sectors such as ``NE25 9``; empty means anywhere) and whom it
takes (``tenures``; empty means every tenure). :func:`route` is called with the
patient's postcode and tenure *before consent* (the pop-up and the preview call it),
so a patient outside every service's area is told so before agreeing to anything.

Tie-break when several services fit, in order: the lowest ``routing_priority``; then
the most specific area match (a sector beats an outward code, which beats "anywhere");
then the service ``id`` alphabetically. The result never depends on file order.

Errors are :class:`~healthy_homes.errors.RoutingError` with a message written for the
clinician; they name the postcode district, never the full postcode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from healthy_homes.config.models import HousingServiceConfig
from healthy_homes.errors import RoutingError
from healthy_homes.referrals.dataset import TENURE_TEXT, MinimumDataset, Tenure

UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9])([A-Z]{2})$")

#: How specific an area match is (higher wins the tie-break).
ANYWHERE, DISTRICT, SECTOR = 0, 1, 2


def postcode_parts(postcode: str | None) -> tuple[str, str] | None:
    """``("NE25", "NE25 9")`` for "ne25 9ab"; None if it is not a full UK postcode."""
    if not postcode:
        return None
    match = UK_POSTCODE.match("".join(postcode.upper().split()))
    if match is None:
        return None
    district, sector = match.group(1), match.group(2)
    return district, f"{district} {sector}"


def area_match(service: HousingServiceConfig, postcode: str | None) -> int | None:
    """How specifically ``service`` covers ``postcode`` (None: it does not)."""
    if not service.postcode_districts:
        return ANYWHERE
    parts = postcode_parts(postcode)
    if parts is None:
        return None
    district, sector = parts
    if sector in service.postcode_districts:
        return SECTOR
    if district in service.postcode_districts:
        return DISTRICT
    return None


def accepts_tenure(service: HousingServiceConfig, tenure: str | None) -> bool:
    """Whether ``service`` takes this tenure (an unknown tenure fits only 'every tenure')."""
    if not service.tenures:
        return True
    return tenure is not None and tenure in service.tenures


def _tenure_text(value: str) -> str:
    try:
        return TENURE_TEXT[Tenure(value)]
    except ValueError:
        return value


def _tenure_words(values: Sequence[str]) -> str:
    words = [_tenure_text(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def route(
    services: Sequence[HousingServiceConfig],
    *,
    postcode: str | None,
    tenure: Tenure | str | None,
) -> HousingServiceConfig:
    """The one housing service for a patient, or RoutingError saying why there is none."""
    tenure_value = tenure.value if isinstance(tenure, StrEnum) else tenure
    if not services:
        raise RoutingError("No housing service is set up for referrals from this practice.")
    in_area = [(s, m) for s in services if (m := area_match(s, postcode)) is not None]
    if not in_area:
        parts = postcode_parts(postcode)
        if parts is None:
            raise RoutingError(
                "The patient's record has no valid home postcode, so no housing service can be "
                "chosen. Check the address before offering a referral."
            )
        names = "; ".join(sorted(s.name for s in services))
        raise RoutingError(
            f"No housing service covers postcode district {parts[0]} (services set up: "
            f"{names}). Do not offer this referral; the patient may contact their local "
            "council's housing team directly."
        )
    fitting = [(s, m) for s, m in in_area if accepts_tenure(s, tenure_value)]
    if not fitting:
        if tenure_value is None:
            raise RoutingError(
                "Ask the patient whether they own their home, rent privately or rent from a "
                "social landlord: the housing service for their area takes "
                + _tenure_words(sorted({t for s, _ in in_area for t in s.tenures}))
                + " homes only."
            )
        offered = sorted({t for s, _ in in_area for t in s.tenures})
        landlord = (
            " For social housing, the patient's landlord is responsible for repairs and hazards."
            if tenure_value == Tenure.SOCIAL
            else ""
        )
        raise RoutingError(
            f"The housing service for the patient's area does not take "
            f"{_tenure_text(tenure_value)} homes (it takes {_tenure_words(offered)})." + landlord
        )
    fitting.sort(key=lambda pair: (pair[0].routing_priority, -pair[1], pair[0].id))
    return fitting[0][0]


def route_dataset(
    services: Sequence[HousingServiceConfig], dataset: MinimumDataset
) -> HousingServiceConfig:
    """:func:`route` for a referral's minimum dataset (postcode and form tenure)."""
    tenure = dataset.referral_form.tenure if dataset.referral_form else None
    return route(services, postcode=dataset.postcode, tenure=tenure)
