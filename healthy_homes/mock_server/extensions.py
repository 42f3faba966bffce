"""The mock server's standard extensions, installed by ``create_app`` unless given.

Bulk export, ``POST /admin/load`` and fault injection (no rules: off) are always
there; housing mode adds Task timelines and ``/admin/tasks``. Pass your own instance
to ``create_app(extensions=[...])`` to configure one, or reach the defaults through
``app.state`` (:func:`~healthy_homes.mock_server.faults.injector_of`,
:func:`~healthy_homes.mock_server.bulk.exports_of`,
:func:`~healthy_homes.mock_server.housing.inbox_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from healthy_homes.mock_server.bulk import BulkExports
from healthy_homes.mock_server.faults import FaultInjector
from healthy_homes.mock_server.housing import HousingMode
from healthy_homes.mock_server.loading import LoadingAdmin

if TYPE_CHECKING:
    from healthy_homes.mock_server.app import AppExtension


def with_defaults(mode: str, extensions: Sequence[AppExtension]) -> list[AppExtension]:
    """``extensions`` plus the standard ones they lack, in install order."""
    standard: list[tuple[type, Callable[[], AppExtension]]] = [
        (BulkExports, BulkExports),
        (LoadingAdmin, LoadingAdmin),
        (FaultInjector, FaultInjector),
    ]
    if mode == "housing":
        standard.insert(0, (HousingMode, HousingMode))
    chosen = list(extensions)
    chosen += [make() for kind, make in standard if not any(isinstance(e, kind) for e in chosen)]
    # Installed last, its middleware is outermost: faults strike before auth or timelines.
    return sorted(chosen, key=lambda e: isinstance(e, FaultInjector))
