"""Reading a register from a FHIR Group the practice maintains (type person, actual).

Active members (not ``inactive``, period not ended) are on the register; their
Patient status is looked up so the dead and deregistered are left off, as with
Condition search. An incremental poll is one ``Group?_id=…&_lastUpdated=ge…``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.pages import fhir_instant, last_updated, server_time, split_entries
from healthy_homes.connector.patients import refresh_statuses
from healthy_homes.connector.sink import RegisterRead
from healthy_homes.errors import FhirError
from healthy_homes.fhir.resources import parse_date, reference_id
from healthy_homes.registers.conditions import (
    condition_ids,
    delete_conditions,
    write_conditions,
)
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.registers.membership import recompute
from healthy_homes.registers.rules import Classified, Role

JSON = dict[str, Any]


def group_spec(ctx: PracticeContext, register: str) -> str:
    """How the practice's Group for a register is found (default: by identifier value)."""
    return ctx.practice.groups.get(register, f"identifier={register}")


def active_members(group: JSON, today: date) -> dict[str, date | None]:
    """Patient id -> membership start of the Group's current members."""
    members: dict[str, date | None] = {}
    for member in group.get("member") or []:
        if member.get("inactive") is True:
            continue
        patient = reference_id(member.get("entity"), "Patient")
        if patient is None:
            continue
        period = member.get("period") or {}
        start, end = parse_date(period.get("start")), parse_date(period.get("end"))
        if (end is not None and end <= today) or (start is not None and start > today):
            continue
        members[patient] = start
    return members


async def find_group(
    ctx: PracticeContext, register: str, known_id: str | None
) -> tuple[JSON, datetime | None]:
    """The register's Group and the server time of the answer."""
    spec = group_spec(ctx, register)
    params: dict[str, str | list[str]]
    if known_id is not None:
        params = {"_id": known_id}
    elif spec.startswith("Group/"):
        params = {"_id": spec.removeprefix("Group/")}
    elif spec.startswith("identifier="):
        params = {"identifier": spec.removeprefix("identifier=")}
    else:
        # R4 defines no search by Group name; list the person Groups and match here.
        params = {"type": "person", "_count": ctx.page_size}
    wanted = spec.removeprefix("name=").casefold() if spec.startswith("name=") else None
    found: list[JSON] = []
    when: datetime | None = None
    async for bundle in ctx.client.search_pages("Group", params):
        when = when or server_time(bundle)
        groups, _ = split_entries(bundle, "Group")
        found += [
            g for g in groups if wanted is None or str(g.get("name", "")).casefold() == wanted
        ]
    if len(found) != 1:
        raise FhirError(
            f"register '{register}': expected one Group for '{spec}', found {len(found)}",
            practice=ctx.ods,
        )
    return found[0], when


async def changed_group(ctx: PracticeContext, group_id: str, watermark: datetime) -> JSON | None:
    """The Group if it changed since the watermark (less the overlap), else None."""
    params: dict[str, str | list[str]] = {
        "_id": group_id,
        "_lastUpdated": "ge" + fhir_instant(watermark - ctx.overlap),
    }
    async for group in ctx.client.search("Group", params):
        return group
    return None


async def read_by_group(
    ctx: PracticeContext,
    register: RegisterDefinition,
    watermark: datetime | None,
    group_id: str | None,
) -> RegisterRead:
    """Read a register from its Group: in full, or only if the Group changed."""
    full = watermark is None or group_id is None
    now = ctx.clock.now()
    when: datetime | None = None
    if full:
        group, when = await find_group(ctx, register.name, group_id)
    else:
        assert watermark is not None and group_id is not None
        changed = await changed_group(ctx, group_id, watermark)
        if changed is None:
            return RegisterRead(register.name, False, watermark=watermark, resource_id=group_id)
        group = changed
    members = active_members(group, now.astimezone(ctx.sync.zone).date())
    ctx.report(register.name, len(members))
    with ctx.db.session() as session:
        before = condition_ids(session, ctx.ods, register.name)
    status_changed = await refresh_statuses(ctx, members, recheck=full)
    entries = [Classified(p, p, Role.MEMBER, since) for p, since in members.items()]
    with ctx.db.session() as session:
        touched = write_conditions(session, ctx.ods, register.name, entries, now)
        # Members are keyed by patient id; anyone no longer listed has left the Group.
        gone = set(before) - set(members)
        touched |= delete_conditions(session, ctx.ods, register.name, gone)
        scope = None if full else touched | status_changed
        change = recompute(session, ctx.ods, register.name, scope, now)
    return RegisterRead(
        register.name,
        full,
        scanned=len(members),
        change=change,
        watermark=last_updated(group) or when or watermark,
        server_time=when,
        status_changed=status_changed,
        resource_id=str(group.get("id")),
    )
