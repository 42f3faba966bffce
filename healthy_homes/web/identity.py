"""Who the signed-in clinician is, for pages that record a person's decisions.

Pages depend on :class:`IdentityProvider` alone. The provider every app uses is
:class:`healthy_homes.web.access.SessionIdentity` (the signed-in session's user).
:class:`ProxyHeaderIdentity` reads the header an authenticating reverse proxy sets,
trusted only from the proxy's addresses; it is used only when a deployment configures
a trusted proxy, and then only to name a user who must exist in our user table
(see ``AccessControl.trusted_proxy``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

MAX_LENGTH = 120
DEFAULT_USER_HEADER = "X-Remote-User"
DEFAULT_NAME_HEADER = "X-Remote-User-Name"
DEFAULT_PRACTITIONER_HEADER = "X-Remote-Practitioner"


@dataclass(frozen=True)
class Clinician:
    """The person using the page: what is recorded as having recorded a decision."""

    user_id: str
    display_name: str
    #: The clinician's FHIR ``Practitioner/ID`` in the practice record, if known; pages
    #: use it to show only this clinician's appointments.
    practitioner: str | None = None

    @property
    def recorded_as(self) -> str:
        """The name written into consent records and referrals."""
        return self.display_name[:MAX_LENGTH]


class IdentityProvider(Protocol):
    """Finds the clinician behind a request, or None when nobody is signed in."""

    def identify(self, request: Request) -> Clinician | None:
        """The clinician making this request."""
        ...


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value[:MAX_LENGTH] or None


class ProxyHeaderIdentity:
    """The clinician named by headers that the practice's reverse proxy sets."""

    def __init__(
        self,
        *,
        trusted_proxies: Iterable[str] = ("127.0.0.1/32", "::1/128"),
        user_header: str = DEFAULT_USER_HEADER,
        name_header: str = DEFAULT_NAME_HEADER,
        practitioner_header: str = DEFAULT_PRACTITIONER_HEADER,
    ) -> None:
        self.trusted = [ipaddress.ip_network(net, strict=False) for net in trusted_proxies]
        self.user_header = user_header
        self.name_header = name_header
        self.practitioner_header = practitioner_header

    def _trusted(self, request: Request) -> bool:
        if request.client is None:
            return False
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def identify(self, request: Request) -> Clinician | None:
        """The headers' clinician, if the request came through a trusted proxy."""
        if not self._trusted(request):
            return None
        user = _clean(request.headers.get(self.user_header))
        if user is None:
            return None
        name = _clean(request.headers.get(self.name_header)) or user
        practitioner = _clean(request.headers.get(self.practitioner_header))
        if practitioner is not None and not practitioner.startswith("Practitioner/"):
            practitioner = f"Practitioner/{practitioner}"
        return Clinician(user, name, practitioner)
