"""Which housing service a referral goes to: exactly one, or a reason why none.

Each ``[[housing_services]]`` entry says where it works (``postcode_districts``: outward
codes such as ``NE25`` or sectors such as ``NE25 9``; empty means anywhere) and whom it
takes (``tenures``; empty means every tenure). :func:`decide` is called with the
patient's postcode (from the practice record, as the referral dataset takes it) and
the referral form's tenure *before consent*: the pop-up shows the chosen service, and
a patient outside every service's area is told so before agreeing to anything
(``consent.actions.ClinicianActions.route``). :func:`route` is the same, raising.

Tie-break when several services fit, in order: the lowest ``routing_priority``; then
the most specific area match (a sector beats an outward code, which beats "anywhere");
then the service ``id`` alphabetically. The result never depends on file order.

Errors are :class:`~healthy_homes.errors.RoutingError` with a message written for the
clinician; they name the postcode district, never the full postcode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
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


class RouteOutcome(StrEnum):
    """Why a patient does or does not have a housing service to be referred to."""

    ROUTED = "routed"
    NO_SERVICE = "no-service"  # nothing configured for this practice
    NO_POSTCODE = "no-postcode"  # the record's home postcode is missing or invalid
    OUT_OF_AREA = "out-of-area"  # no service covers the postcode district
    TENURE_NEEDED = "tenure-needed"  # the area's service takes some tenures: ask which
    TENURE_NOT_TAKEN = "tenure-not-taken"  # the area's service does not take this tenure


@dataclass(frozen=True)
class Routing:
    """The one housing service for a patient, or why there is none (words for the clinician)."""

    outcome: RouteOutcome
    service: HousingServiceConfig | None = None
    message: str = ""

    @property
    def can_refer(self) -> bool:
        """A referral can be offered and sent."""
        return self.service is not None

    @property
    def can_ask(self) -> bool:
        """The offer may still be made: either routed, or routed once tenure is known."""
        return self.service is not None or self.outcome == RouteOutcome.TENURE_NEEDED


def decide(
    services: Sequence[HousingServiceConfig],
    *,
    postcode: str | None,
    tenure: Tenure | str | None,
) -> Routing:
    """Route a patient: the chosen service, or the outcome and message saying why not."""
    tenure_value = tenure.value if isinstance(tenure, StrEnum) else tenure
    if not services:
        return Routing(
            RouteOutcome.NO_SERVICE,
            message="No housing service is set up for referrals from this practice.",
        )
    in_area = [(s, m) for s in services if (m := area_match(s, postcode)) is not None]
    if not in_area:
        parts = postcode_parts(postcode)
        if parts is None:
            return Routing(
                RouteOutcome.NO_POSTCODE,
                message="The patient's record has no valid home postcode, so no housing "
                "service can be chosen. Check the address before offering a referral.",
            )
        names = "; ".join(sorted(s.name for s in services))
        return Routing(
            RouteOutcome.OUT_OF_AREA,
            message=f"No housing service covers postcode district {parts[0]} (services set "
            f"up: {names}). Do not offer this referral; the patient may contact their local "
            "council's housing team directly.",
        )
    fitting = [(s, m) for s, m in in_area if accepts_tenure(s, tenure_value)]
    if not fitting:
        offered = sorted({t for s, _ in in_area for t in s.tenures})
        if tenure_value is None:
            return Routing(
                RouteOutcome.TENURE_NEEDED,
                message="Ask the patient whether they own their home, rent privately or rent "
                "from a social landlord: the housing service for their area takes "
                + _tenure_words(offered)
                + " homes only.",
            )
        landlord = (
            " For social housing, the patient's landlord is responsible for repairs and hazards."
            if tenure_value == Tenure.SOCIAL
            else ""
        )
        return Routing(
            RouteOutcome.TENURE_NOT_TAKEN,
            message=f"The housing service for the patient's area does not take "
            f"{_tenure_text(tenure_value)} homes (it takes {_tenure_words(offered)})." + landlord,
        )
    fitting.sort(key=lambda pair: (pair[0].routing_priority, -pair[1], pair[0].id))
    return Routing(RouteOutcome.ROUTED, fitting[0][0])


def route(
    services: Sequence[HousingServiceConfig],
    *,
    postcode: str | None,
    tenure: Tenure | str | None,
) -> HousingServiceConfig:
    """The one housing service for a patient, or RoutingError saying why there is none."""
    routing = decide(services, postcode=postcode, tenure=tenure)
    if routing.service is None:
        raise RoutingError(routing.message)
    return routing.service


def decide_dataset(services: Sequence[HousingServiceConfig], dataset: MinimumDataset) -> Routing:
    """:func:`decide` for a referral's minimum dataset (postcode and form tenure)."""
    tenure = dataset.referral_form.tenure if dataset.referral_form else None
    return decide(services, postcode=dataset.postcode, tenure=tenure)


def route_dataset(
    services: Sequence[HousingServiceConfig], dataset: MinimumDataset
) -> HousingServiceConfig:
    """:func:`route` for a referral's minimum dataset (postcode and form tenure)."""
    routing = decide_dataset(services, dataset)
    if routing.service is None:
        raise RoutingError(routing.message)
    return routing.service
