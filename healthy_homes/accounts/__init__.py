"""People who sign in: roles, organisations, passwords, sessions and the sign-in lock-out.

The web layer (``healthy_homes.web.access``) asks :class:`DatabaseAccounts` who is
signed in; the ``healthy-homes users`` commands manage the accounts.
"""

from healthy_homes.accounts.sessions import DatabaseAccounts, SessionPolicy, access_control
from healthy_homes.accounts.throttle import SignInLimits

__all__ = ["DatabaseAccounts", "SessionPolicy", "SignInLimits", "access_control"]
