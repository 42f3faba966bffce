"""The connector process freezes its start-up heap; what syncs make is still collected."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, weakref
import healthy_homes.connector.cli
from healthy_homes.connector.heap import YOUNG_GENERATION_THRESHOLD, freeze_startup_heap

class Node:
    pass

freeze_startup_heap()
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
cycle = Node()
cycle.me = cycle
alive = weakref.ref(cycle)
del cycle
gc.collect()
assert alive() is None  # made after the freeze: collected as usual
assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD

# Without an explicit collect: a cycle still goes once enough new containers are alive.
cycle = Node()
cycle.me = cycle
alive = weakref.ref(cycle)
del cycle
held = [[] for _ in range(YOUNG_GENERATION_THRESHOLD // 2)]
assert alive() is not None  # fewer than the threshold: not collected yet
held += [[] for _ in range(YOUNG_GENERATION_THRESHOLD)]
assert alive() is None
print("ok")
"""


def test_startup_objects_are_frozen_and_later_cycles_still_collected() -> None:
    # In a process of its own: freezing is for the whole process, not for the test run.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
