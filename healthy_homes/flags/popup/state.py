"""The pop-up's configuration and per-app state, and who is asking."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from starlette.requests import Request

from healthy_homes.config.models import (
    FlagRulesConfig,
    HousingServiceConfig,
    PracticeConfig,
    Settings,
)
from healthy_homes.consent.actions import ClinicianActions
from healthy_homes.errors import ConfigError
from healthy_homes.flags.popup.board import PromptBoard
from healthy_homes.flags.popup.watch import DEFAULT_WATCH_MAX_AGE
from healthy_homes.web.access import access_of
from healthy_homes.web.identity import Clinician, IdentityProvider


@dataclass(frozen=True)
class PopupConfig:
    """One practice's pop-up: where its records are, where referrals go, how often to look.

    ``service`` is the practice's default housing service; ``services`` all those its
    patients may be routed to (empty: ``service`` alone).
    """

    practice: PracticeConfig
    service: HousingServiceConfig
    rules: FlagRulesConfig = field(default_factory=FlagRulesConfig)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    poll_seconds: float = 2.0
    heartbeat_seconds: float = 15.0
    #: The connector's appointment watch is trusted while younger than this.
    watch_max_age: timedelta = DEFAULT_WATCH_MAX_AGE
    services: tuple[HousingServiceConfig, ...] = ()

    @property
    def referral_services(self) -> tuple[HousingServiceConfig, ...]:
        """The housing services routing chooses from."""
        return self.services or (self.service,)

    @classmethod
    def from_settings(cls, settings: Settings, ods_code: str, **options: Any) -> PopupConfig:
        """The pop-up of one configured practice."""
        try:
            practice = settings.practice(ods_code)
        except KeyError:
            raise ConfigError(f"practice {ods_code} is not configured") from None
        service = settings.housing_service_for(practice)
        if service is None:
            raise ConfigError("the practice has no housing service", practice=ods_code)
        watched = timedelta(seconds=5 * settings.sync.appointment_seconds)
        # A practice that names its service refers there only; otherwise routing
        # chooses among every configured service by postcode and tenure.
        services = tuple(
            s for s in settings.housing_services if practice.housing_service in (None, s.id)
        )
        return cls(
            practice,
            service,
            settings.flags,
            settings.sync.zone,
            watch_max_age=max(DEFAULT_WATCH_MAX_AGE, watched),
            services=services,
            **options,
        )


@dataclass
class PopupState:
    """Everything the routes need, built when the app starts."""

    config: PopupConfig
    identity: IdentityProvider
    env: Environment
    board: PromptBoard
    actions: ClinicianActions | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def close_streams(self) -> None:
        """End every page's event stream; callable from any thread (before stopping).

        A server waits for open responses before it stops, and an event stream never
        ends by itself.
        """
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.board.close)


class NotSignedIn(Exception):
    """No clinician identity on the request (answered with 401)."""


def state_of(request: Request) -> PopupState:
    """The app's state."""
    state: PopupState = request.app.state.popup
    return state


def clinician_of(request: Request) -> Clinician:
    """The signed-in clinician, or NotSignedIn."""
    found = state_of(request).identity.identify(request)
    if found is None:
        raise NotSignedIn
    return found


def account_of(request: Request) -> str:
    """The signed-in user's account id (``user_account.id``), or NotSignedIn.

    What a referral is filed under: two people may share a display name, never an id.
    """
    found = access_of(request).principal(request)
    if found is None:
        raise NotSignedIn
    return found.user_id


def actions_of(request: Request) -> ClinicianActions:
    """The practice's clinician actions (built at start-up)."""
    actions = state_of(request).actions
    if actions is None:
        raise RuntimeError("the pop-up app has not started")
    return actions
