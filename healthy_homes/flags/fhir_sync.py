"""Keeping the practice record's FHIR Flag in step with our flag, idempotently.

Create is conditional on our identifier (a retry or a restart finds the first Flag);
updates are version-aware: ``If-Match`` with the version just read, and on 412 (the
EHR or another worker wrote in between) we read again and redo the change.
"""

from __future__ import annotations

from collections.abc import Callable

from healthy_homes.clock import Clock
from healthy_homes.errors import FhirStatusError
from healthy_homes.fhir.client import JSON, FhirClient
from healthy_homes.fhir.systems import HH_FLAG_ID
from healthy_homes.flags.fhir_flag import build_flag, flag_search_key, inactivated
from healthy_homes.store.db import Database
from healthy_homes.store.models import OPEN_FLAG_STATUSES, FlagRecord

MAX_CONFLICTS = 3
GONE = frozenset({404, 410})
Change = Callable[[JSON], JSON | None]


async def versioned_update(
    client: FhirClient, resource_type: str, resource_id: str, change: Change
) -> JSON:
    """Read, apply ``change`` (None: nothing to do), PUT with If-Match; redo after a 412."""
    for attempt in range(MAX_CONFLICTS + 1):
        current = await client.read(resource_type, resource_id)
        updated = change(current)
        if updated is None:
            return current
        version = (current.get("meta") or {}).get("versionId")
        try:
            return await client.update(updated, if_match=f'W/"{version}"' if version else None)
        except FhirStatusError as exc:
            if exc.status_code != 412 or attempt == MAX_CONFLICTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def find_by_identifier(
    client: FhirClient, resource_type: str, system: str, value: str
) -> JSON | None:
    """The one resource carrying our identifier, if the server has it."""
    async for resource in client.search(resource_type, {"identifier": f"{system}|{value}"}):
        return resource
    return None


def _remember(db: Database, record: FlagRecord, fhir_id: str | None, status: str | None) -> None:
    with db.session() as session:
        row = session.get(FlagRecord, record.id)
        if row is not None:
            row.fhir_flag_id = fhir_id or row.fhir_flag_id
            row.fhir_status = status
            session.add(row)
    record.fhir_flag_id = fhir_id or record.fhir_flag_id
    record.fhir_status = status


async def write_fhir_flag(db: Database, client: FhirClient, record: FlagRecord) -> None:
    """Create (or find) the FHIR Flag for a flag record and remember its server id."""
    resource = build_flag(
        flag_id=record.id,
        patient_id=record.patient_id,
        practice_ods=record.practice_ods,
        start=record.created_at,
    )
    created = await client.create(resource, if_none_exist=flag_search_key(record.id))
    _remember(db, record, str(created.get("id")), str(created.get("status")))


async def close_fhir_flag(client: FhirClient, record: FlagRecord, clock: Clock) -> None:
    """Inactivate the FHIR Flag (version-aware); a Flag never written or deleted is closed."""
    fhir_id = record.fhir_flag_id
    if fhir_id is None:
        found = await find_by_identifier(client, "Flag", HH_FLAG_ID, record.id)
        if found is None:
            return
        fhir_id = str(found["id"])
        record.fhir_flag_id = fhir_id
    end = clock.now()
    try:
        await versioned_update(client, "Flag", fhir_id, lambda current: inactivated(current, end))
    except FhirStatusError as exc:
        if exc.status_code not in GONE:
            raise


async def sync_fhir_flag(
    db: Database, client: FhirClient, record: FlagRecord, clock: Clock
) -> FlagRecord:
    """Make the practice record's Flag match our flag: active while open, inactive after."""
    if record.status in {s.value for s in OPEN_FLAG_STATUSES}:
        if record.fhir_status != "active" or record.fhir_flag_id is None:
            await write_fhir_flag(db, client, record)
        return record
    if record.fhir_status != "inactive":
        await close_fhir_flag(client, record, clock)
        _remember(db, record, record.fhir_flag_id, "inactive")
    return record
