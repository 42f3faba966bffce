"""The inbox on a loopback port, fresh for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.housing.world import Inbox, start_inbox


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    """Teams 'north' and 'south' with one officer each."""
    running = start_inbox(tmp_path)
    try:
        yield running
    finally:
        running.stop()
