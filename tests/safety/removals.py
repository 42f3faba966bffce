"""How to take each safety control out, so the hazard log's tests can show they notice.

Each removal swaps the body of the function that *is* the control for one that does not
control anything (``__code__`` is replaced, so every module that imported the function
by name gets the weakened body too). The hazard log (``docs/hazard-log.md``) names a
removal for every hazard; ``test_hazard_log.py`` runs the hazard's test with the removal
applied and expects it to fail. Removals are undone after each test, so one child pytest
can check every hazard in turn.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import CodeType
from typing import Any

#: Bodies swapped out, so a removal can be undone after its test.
_ORIGINALS: list[tuple[Any, CodeType]] = []


def _swap(target: str, replacement: Callable[..., Any]) -> None:
    """Give ``module:qualname`` the body of ``replacement`` (same signature)."""
    module_name, _, qualname = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        owner = getattr(owner, part)
    function = owner
    if not callable(function) or not hasattr(function, "__code__"):
        raise TypeError(f"{target} is not a plain function")
    # The replacement's globals are not the target's: only use names that the target's
    # module also defines, or builtins.
    _ORIGINALS.append((function, function.__code__))
    function.__code__ = replacement.__code__


def _no_consent_check() -> None:
    def require_active_consent(session, consent_id, *, patient_id, practice, referral):  # type: ignore[no-untyped-def]
        return session.get(ConsentRecord, consent_id) if consent_id else None  # noqa: F821

    _swap("healthy_homes.consent.gate:require_active_consent", require_active_consent)


def _no_suppression_window() -> None:
    def suppression(history, rules, now):  # type: ignore[no-untyped-def]
        return None

    _swap("healthy_homes.flags.rules:suppression", suppression)


def _no_open_flag_block() -> None:
    def blocked(history, rules, now):  # type: ignore[no-untyped-def]
        offer = suppression(history, rules, now)  # noqa: F821
        return SUPPRESSED.get(offer.outcome, "suppressed") if offer else None  # noqa: F821

    _swap("healthy_homes.flags.rules:blocked", blocked)


def _no_current_patient_check() -> None:
    def patient_is_current(patient):  # type: ignore[no-untyped-def]
        return None

    _swap("healthy_homes.flags.rules:patient_is_current", patient_is_current)


def _no_capacity_throttle() -> None:
    def allow(self, wanted):  # type: ignore[no-untyped-def]
        return wanted

    _swap("healthy_homes.flags.capacity:HousingCapacity.allow", allow)


def _no_daily_cap() -> None:
    def _raised_today(db, practice, now):  # type: ignore[no-untyped-def]
        return -(10**9)

    _swap("healthy_homes.flags.lifecycle:_raised_today", _raised_today)


def _no_overdue_alert() -> None:
    async def check_overdue(db, services, *, clock, zone=None, mirror=None, notify=None):  # type: ignore[no-untyped-def]
        return []

    _swap("healthy_homes.referrals.loop:check_overdue", check_overdue)


def _no_alert_dedupe() -> None:
    def raise_alert(session, *, kind, subject, episode, practice, message, now):  # type: ignore[no-untyped-def]
        alert = Alert(  # noqa: F821
            key=f"{kind}:{subject}:{episode}:{__import__('uuid').uuid4().hex}",
            kind=kind,
            subject=subject,
            practice_ods=practice,
            message=message,
            created_at=now,
        )
        session.add(alert)
        return alert

    _swap("healthy_homes.connector.delivery.alerts:raise_alert", raise_alert)


def _no_hl7_escaping() -> None:
    def escape(text):  # type: ignore[no-untyped-def]
        return text

    _swap("healthy_homes.referrals.transports.hl7v2:escape", escape)


def _all_addresses_sent() -> None:
    def _home_address(patient):  # type: ignore[no-untyped-def]
        addresses = patient.get("address") or [{}]
        merged = dict(addresses[0])
        merged["line"] = [line for a in addresses for line in a.get("line") or []]
        return merged

    _swap("healthy_homes.referrals.dataset:_home_address", _home_address)


def _health_reason_always_allowed() -> None:
    def allow_health_reason(form, *, practice_allows):  # type: ignore[no-untyped-def]
        return None

    _swap("healthy_homes.referrals.dataset:allow_health_reason", allow_health_reason)


def _every_service_covers_everywhere() -> None:
    def area_match(service, postcode):  # type: ignore[no-untyped-def]
        return ANYWHERE  # noqa: F821

    _swap("healthy_homes.referrals.routing:area_match", area_match)


def _no_recall() -> None:
    def _needs_recall(referral):  # type: ignore[no-untyped-def]
        return False

    _swap("healthy_homes.consent.withdrawal:_needs_recall", _needs_recall)


def _macs_never_checked() -> None:
    def macs_equal(a, b):  # type: ignore[no-untyped-def]
        return True

    _swap("healthy_homes.audit.chain:macs_equal", macs_equal)


def _no_log_redaction() -> None:
    def redact(text):  # type: ignore[no-untyped-def]
        return text

    _swap("healthy_homes.logs:redact", redact)


def _no_purge() -> None:
    def plan_and_remove(session, config, clock, counts):  # type: ignore[no-untyped-def]
        return None

    _swap("healthy_homes.retention.purge:plan_and_remove", plan_and_remove)


def _every_role_allowed() -> None:
    def allows(self, principal, roles):  # type: ignore[no-untyped-def]
        return True

    _swap("healthy_homes.web.access:AccessControl.allows", allows)


def _no_team_scoping() -> None:
    def team_referral(session, team_id, referral_id):  # type: ignore[no-untyped-def]
        return session.get(HousingReferral, referral_id)  # noqa: F821

    _swap("healthy_homes.housing.workflow:team_referral", team_referral)


def _no_sign_in_throttle() -> None:
    def locked(session, limits, username, address, now):  # type: ignore[no-untyped-def]
        return False

    _swap("healthy_homes.accounts.throttle:locked", locked)


def _no_encryption_at_rest() -> None:
    def _seal(self, plaintext):  # type: ignore[no-untyped-def]
        return plaintext

    def _open(self, stored):  # type: ignore[no-untyped-def]
        return bytes(stored)

    _swap("healthy_homes.store.types:Sealed._seal", _seal)
    _swap("healthy_homes.store.types:Sealed._open", _open)


def _no_combined_fallback() -> None:
    async def _each_alone(self, group, refused):  # type: ignore[no-untyped-def]
        return {e.referral_id: self._error(refused, e, "did not take the referral") for e in group}

    _swap("healthy_homes.referrals.transports.fhir_rest:FhirRestTransport._each_alone", _each_alone)


def _patients_share_transactions() -> None:
    def distinct_patients(envelopes):  # type: ignore[no-untyped-def]
        return [list(envelopes)]

    _swap("healthy_homes.referrals.transports.fhir_rest:distinct_patients", distinct_patients)


def _stored_before_status() -> None:
    async def settle(self):  # type: ignore[no-untyped-def]
        return None

    _swap("healthy_homes.connector.patients:StatusLookups.settle", settle)


def _every_referral_of_the_practice_listed() -> None:
    def made_by(practice, user_id):  # type: ignore[no-untyped-def]
        return select(Referral).where(Referral.practice_ods == practice)  # noqa: F821

    _swap("healthy_homes.flags.popup.referrals:made_by", made_by)


#: Every removal the hazard log may name.
REMOVALS: dict[str, Callable[[], None]] = {
    "consent-gate": _no_consent_check,
    "suppression-window": _no_suppression_window,
    "open-flag-block": _no_open_flag_block,
    "current-patient-check": _no_current_patient_check,
    "capacity-throttle": _no_capacity_throttle,
    "daily-cap": _no_daily_cap,
    "overdue-alert": _no_overdue_alert,
    "alert-dedupe": _no_alert_dedupe,
    "hl7-escaping": _no_hl7_escaping,
    "dataset-extraction": _all_addresses_sent,
    "health-reason-opt-in": _health_reason_always_allowed,
    "area-routing": _every_service_covers_everywhere,
    "withdrawal-recall": _no_recall,
    "audit-mac-check": _macs_never_checked,
    "log-redaction": _no_log_redaction,
    "retention-purge": _no_purge,
    "role-check": _every_role_allowed,
    "team-scoping": _no_team_scoping,
    "sign-in-throttle": _no_sign_in_throttle,
    "encryption-at-rest": _no_encryption_at_rest,
    "combined-fallback": _no_combined_fallback,
    "distinct-patients": _patients_share_transactions,
    "status-before-store": _stored_before_status,
    "own-referrals-only": _every_referral_of_the_practice_listed,
}


def apply(name: str) -> None:
    """Take the named control out of this process."""
    try:
        removal = REMOVALS[name]
    except KeyError:
        raise KeyError(f"unknown control {name!r}; expected one of {sorted(REMOVALS)}") from None
    removal()


def restore() -> None:
    """Put back every control taken out, newest first."""
    while _ORIGINALS:
        function, code = _ORIGINALS.pop()
        function.__code__ = code
