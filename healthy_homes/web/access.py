"""Who may use which page: roles, the signed-in principal, and ``require_role``.

Every page and API route depends on :func:`require_role`; nothing is open except what
an app leaves out on purpose (sign-in, static assets, health). The principal comes from
a server-side session (the cookie holds a random token; the account store keeps only
its hash and enforces idle and absolute timeouts) or, when a deployment configures it,
from a trusted reverse proxy's header naming a user who must still exist here: the
proxy authenticates, our user table decides the role.

This module knows nothing of the database: an :class:`AccountStore` (the accounts
package's is backed by the store) answers the questions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from healthy_homes.clock import Clock
from healthy_homes.web.identity import Clinician, ProxyHeaderIdentity

SIGN_IN_PATH = "/sign-in"
STATE_KEY = "principal"


class Role(StrEnum):
    """What a user may do; each user has exactly one."""

    CLINICIAN = "clinician"
    PRACTICE_ADMIN = "practice_admin"
    HOUSING_OFFICER = "housing_officer"
    HOUSING_MANAGER = "housing_manager"


PRACTICE_ROLES = frozenset({Role.CLINICIAN, Role.PRACTICE_ADMIN})
HOUSING_ROLES = frozenset({Role.HOUSING_OFFICER, Role.HOUSING_MANAGER})


@dataclass(frozen=True)
class Principal:
    """The signed-in person: their role within one organisation."""

    user_id: str
    username: str
    display_name: str
    role: Role
    #: A practice's ODS code (practice roles) or a housing team's id (housing roles).
    organisation: str
    #: A clinician's FHIR ``Practitioner/ID`` in the practice record, if known.
    practitioner: str | None = None

    @property
    def recorded_as(self) -> str:
        """The name written into records this person makes."""
        return self.display_name[:120]


class AccountStore(Protocol):
    """Checks passwords and keeps sessions (``healthy_homes.accounts`` implements it)."""

    def sign_in(self, username: str, password: str, address: str) -> str | None:
        """A new session token, or None (wrong password, unknown, disabled or locked out)."""
        ...

    def principal(self, token: str) -> Principal | None:
        """The session's principal if it is live (and now used), else None."""
        ...

    def principal_named(self, username: str) -> Principal | None:
        """An enabled user by name (for a trusted proxy's header)."""
        ...

    def sign_out(self, token: str) -> None:
        """End the session."""
        ...


class SignInRequired(Exception):
    """Nobody is signed in (401, or a redirect to the sign-in page for a browser)."""


class NotPermitted(Exception):
    """Signed in, but this role or organisation may not use this (403)."""


@dataclass
class AccessControl:
    """One app's access policy: its account store, whose organisation, cookie policy."""

    store: AccountStore
    clock: Clock
    #: Short name for the cookie, so two apps on one host keep separate sessions.
    app_name: str
    #: The practice this app serves (practice roles must belong to it); None: any.
    organisation: str | None = None
    #: Mark the cookie Secure (and ``__Host-``) even when the proxy does not say HTTPS.
    secure_cookies: bool = False
    trusted_proxy: ProxyHeaderIdentity | None = None
    #: Where a signed-in user lands after signing in.
    home: str = "/"
    #: Roles that can sign in here at all (others are told this is not their service).
    roles: frozenset[Role] = field(default_factory=lambda: frozenset(Role))

    def secure(self, request: Request) -> bool:
        """Whether the session cookie is Secure for this request."""
        return self.secure_cookies or request.url.scheme == "https"

    def cookie_name(self, request: Request) -> str:
        """``__Host-`` (no Domain, Path=/, Secure) whenever the cookie is Secure."""
        name = f"hh_{self.app_name}_session"
        return f"__Host-{name}" if self.secure(request) else name

    def token(self, request: Request) -> str | None:
        """The session token the request carries, if well-formed."""
        value = request.cookies.get(self.cookie_name(request))
        return value if value and len(value) <= 100 else None

    def principal(self, request: Request) -> Principal | None:
        """Who is signed in on this request (looked up once per request)."""
        if STATE_KEY in request.scope.get("state", {}):
            cached: Principal | None = request.scope["state"][STATE_KEY]
            return cached
        found: Principal | None = None
        if self.trusted_proxy is not None:
            person = self.trusted_proxy.identify(request)
            if person is not None:
                found = self.store.principal_named(person.user_id)
        if found is None:
            token = self.token(request)
            found = self.store.principal(token) if token else None
        request.scope.setdefault("state", {})[STATE_KEY] = found
        return found

    def still_signed_in(self, request: Request) -> bool:
        """Whether the request's user is still signed in now (not the cached answer).

        For a long-lived response such as an event stream: sign-out, a disabled account
        or a timed-out session ends it at the next event.
        """
        request.scope.get("state", {}).pop(STATE_KEY, None)
        return self.principal(request) is not None

    def allows(self, principal: Principal, roles: Iterable[Role]) -> bool:
        """Whether the principal has one of ``roles`` in this app's organisation."""
        if principal.role not in set(roles):
            return False
        in_practice = principal.role in PRACTICE_ROLES
        return not (
            in_practice and self.organisation and principal.organisation != self.organisation
        )


def access_of(request: Request) -> AccessControl:
    """The app's access control (set by ``install_sign_in``)."""
    access: AccessControl = request.app.state.access
    return access


def require_role(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the principal, if signed in with one of ``roles``."""
    if not roles:
        raise ValueError("name at least one role")
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        access = access_of(request)
        principal = access.principal(request)
        if principal is None:
            raise SignInRequired
        if not access.allows(principal, allowed):
            raise NotPermitted
        return principal

    dependency.__name__ = f"require_{'_or_'.join(sorted(allowed))}"
    return dependency


def wants_page(request: Request) -> bool:
    """A browser navigating to a page (not a script's call)."""
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def to_sign_in(request: Request) -> Response:
    """A browser goes to the sign-in page (and back here after); anything else gets 401."""
    if wants_page(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{SIGN_IN_PATH}?next={quote(target, safe='')}", 303)
    return JSONResponse({"error": "Sign in first."}, status_code=401)


class SessionIdentity:
    """An :class:`IdentityProvider`: the signed-in user, if they hold one of ``roles`` here."""

    def __init__(self, roles: Iterable[Role] = (Role.CLINICIAN,)) -> None:
        self.roles = frozenset(roles)

    def identify(self, request: Request) -> Clinician | None:
        """The signed-in person as the one recorded as acting."""
        access = access_of(request)
        found = access.principal(request)
        if found is None or not access.allows(found, self.roles):
            return None
        return Clinician(found.username, found.display_name, found.practitioner)
