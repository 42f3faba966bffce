"""A pytest plugin that takes one safety control out before any test module loads.

Used only by ``test_hazard_log.py``, which runs a hazard's test in a child pytest with
``-p tests.safety.remove_control`` and ``HH_REMOVE_CONTROL=<name>``. Applying the
removal at import time (plugins given with ``-p`` load before conftest files and test
modules) means every later import sees the weakened control.
"""

from __future__ import annotations

import os

from tests.safety.removals import apply

_NAME = os.environ.get("HH_REMOVE_CONTROL")
if _NAME:
    apply(_NAME)
