"""People who sign in: roles, organisations, passwords, sessions and the sign-in lock-out.

The web layer (``healthy_homes.web.access``) asks :class:`DatabaseAccounts` who is
signed in; the ``healthy-homes users`` commands manage the accounts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from healthy_homes.accounts.sessions import DatabaseAccounts, SessionPolicy, access_control
    from healthy_homes.accounts.throttle import SignInLimits

__all__ = ["DatabaseAccounts", "SessionPolicy", "SignInLimits", "access_control"]
_HOMES = {"SignInLimits": "throttle"}


def __getattr__(name: str) -> object:
    # Lazily: 'healthy-homes users' is registered from this package, and the sessions
    # bring the database (Alembic) that other commands' parsers must not pay for.
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{_HOMES.get(name, 'sessions')}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
