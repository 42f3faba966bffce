"""The connector process's heap: start-up objects frozen, and young objects collected less often.

A register sync decodes megabytes of JSON into dicts and lists, and enough of them
live long enough (a page is being stored while the next one is decoded) to trigger
CPython's full collections, each of which walks every tracked object in the process:
modules, pydantic and ``fhir.resources`` schemas, SQLAlchemy metadata. That walk cost
more than a whole 10k-patient register read. Start-up objects live until the process
ends, so after start-up they are collected once and frozen (:func:`gc.freeze`), and
full collections walk only what the syncs themselves made.

The same pages set off the young generation's collections too: at CPython's default
of one per 700 net new containers, a 10k-patient read ran some 60 of them and 5 of
the middle generation, walking each page's dicts while it was still being stored
(about a tenth of the read's CPU). Decoded pages hold no reference cycles and are
freed by reference counting once stored, so a larger young generation lets most of
them go before any collection looks at them; real cycles are still collected, a
little later.
"""

from __future__ import annotations

import gc

#: Net new container objects before the young generation is collected (CPython: 700).
#: About a dozen decoded pages of 200 Conditions: what a read of several registers
#: side by side holds at once.
YOUNG_GENERATION_THRESHOLD = 50_000


def freeze_startup_heap() -> None:
    """Collect start-up garbage once, keep the survivors out of later collections, and
    collect young objects less often.

    For processes that run the connector (``sync``, ``serve``): call once, after
    configuration, migrations and imports, before the first sync.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
