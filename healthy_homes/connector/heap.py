"""The connector process's heap: what was built at start-up is left out of garbage collection.

A register sync decodes megabytes of JSON into dicts and lists, and enough of them
live long enough (a page is being stored while the next one is decoded) to trigger
CPython's full collections, each of which walks every tracked object in the process:
modules, pydantic and ``fhir.resources`` schemas, SQLAlchemy metadata. That walk cost
more than a whole 10k-patient register read. Start-up objects live until the process
ends, so after start-up they are collected once and frozen (:func:`gc.freeze`), and
full collections walk only what the syncs themselves made.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect start-up garbage once, then keep every surviving object out of later collections.

    For processes that run the connector (``sync``, ``serve``): call once, after
    configuration, migrations and imports, before the first sync.
    """
    gc.collect()
    gc.freeze()
