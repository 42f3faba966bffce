"""Reading a register by FHIR Bulk Data ``Group/[id]/$export`` (with ``_since``).

Kick-off, poll the status URL honouring Retry-After (injected sleep, so tests never
wait), then stream each ndjson output line by line into the Condition sink: a file
is never held in memory. Processing is idempotent, so a cut-off download is simply
read again from the start. Spec: https://hl7.org/fhir/uv/bulkdata/export.html
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlmodel import select

from healthy_homes.connector.context import PracticeContext
from healthy_homes.connector.group_source import active_members, changed_group, find_group
from healthy_homes.connector.pages import fhir_instant
from healthy_homes.connector.sink import ConditionSink, RegisterRead
from healthy_homes.errors import FhirError, FhirResponseError
from healthy_homes.fhir.observe import safe_url
from healthy_homes.fhir.resources import parse_instant
from healthy_homes.fhir.retry import backoff_delay, parse_retry_after
from healthy_homes.registers.conditions import delete_patients
from healthy_homes.registers.definitions import RegisterDefinition
from healthy_homes.store.models import RegisterCondition

log = logging.getLogger(__name__)

JSON = dict[str, Any]
NDJSON = "application/fhir+ndjson"
LINES_PER_BATCH = 500
FIRST_POLL_WAIT = 1.0
LONGEST_POLL_WAIT = 120.0


async def kick_off(ctx: PracticeContext, group_id: str, since: datetime | None) -> str:
    """Start a Group export of Patients and Conditions; return the status URL."""
    params: dict[str, str | list[str]] = {"_type": "Patient,Condition"}
    if since is not None:
        params["_since"] = fhir_instant(since)
    response = await ctx.client.request(
        "GET",
        f"Group/{group_id}/$export",
        params=params,
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
    )
    location = response.headers.get("Content-Location")
    if response.status_code != 202 or not location:
        raise FhirResponseError(
            f"bulk export kick-off answered HTTP {response.status_code} without a status URL",
            url=safe_url(str(response.url)),
            practice=ctx.ods,
        )
    return ctx.client.resolve(location)


async def wait_for_manifest(ctx: PracticeContext, status_url: str) -> JSON:
    """Poll until the export is complete; waits follow Retry-After, else grow from 1 s."""
    waited = 0.0
    delay = FIRST_POLL_WAIT
    garbled = 0
    rng = random.Random()
    while True:
        response = await ctx.client.request("GET", status_url)
        if response.status_code == 200:
            try:
                manifest = response.json()
            except ValueError:
                manifest = None
            if isinstance(manifest, dict) and isinstance(manifest.get("output"), list):
                return manifest
            # A cut-off manifest is asked for again: the status URL answers until deleted.
            garbled += 1
            if garbled >= ctx.client.policy.max_attempts:
                raise FhirResponseError(
                    "bulk export manifest is not a JSON object with 'output'",
                    url=safe_url(status_url),
                    practice=ctx.ods,
                )
            await ctx.sleep(backoff_delay(ctx.client.policy, garbled, rng))
            continue
        if response.status_code != 202:
            raise FhirResponseError(
                f"bulk export status answered HTTP {response.status_code}",
                url=safe_url(status_url),
                practice=ctx.ods,
            )
        told = parse_retry_after(response.headers.get("Retry-After"), ctx.clock.now())
        wait = min(told if told is not None else delay, LONGEST_POLL_WAIT)
        delay = min(delay * 2, LONGEST_POLL_WAIT)
        if waited + wait > ctx.sync.bulk_max_wait_seconds:
            raise FhirError(
                f"bulk export not ready after {waited:.0f} s",
                url=safe_url(status_url),
                practice=ctx.ods,
            )
        await ctx.sleep(wait)
        waited += wait


def _same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.netloc) == (y.scheme, y.netloc)


def _decode_line(line: bytes, url: str, practice: str) -> JSON:
    try:
        resource = orjson.loads(line)
    except ValueError as exc:
        raise FhirResponseError(
            "bulk output has a line that is not JSON (cut off?)",
            url=safe_url(url),
            practice=practice,
        ) from exc
    if not isinstance(resource, dict):
        raise FhirResponseError(
            "bulk output has a line that is not a resource", url=safe_url(url), practice=practice
        )
    return resource


async def read_output(
    ctx: PracticeContext,
    output: JSON,
    requires_token: bool,
    handle: Callable[[list[JSON]], None],
) -> int:
    """Feed one output file to ``handle`` in batches (memory stays one batch deep).

    A file cut off after its first line is read again from the start: processing is
    idempotent. Failures before the first line the client has already retried.
    """
    url = ctx.client.resolve(str(output.get("url", "")))
    expected = output.get("count")
    # Our credentials go where the token is needed or harmless, never to a pre-signed
    # URL on another host.
    credentials = requires_token or _same_origin(url, ctx.client.base_url)
    rng = random.Random()
    attempt = 0
    while True:
        attempt += 1
        lines = 0
        began = False
        batch: list[JSON] = []
        error: FhirError
        try:
            stream = ctx.client.stream_lines(
                url, headers={"Accept": NDJSON}, credentials=credentials
            )
            async with contextlib.aclosing(stream):
                async for line in stream:
                    began = True
                    batch.append(_decode_line(line, url, ctx.ods))
                    if len(batch) >= LINES_PER_BATCH:
                        handle(batch)
                        lines, batch = lines + len(batch), []
            if batch:
                handle(batch)
                lines += len(batch)
        except FhirError as exc:
            if not began:
                raise
            error = exc
        else:
            if not isinstance(expected, int) or lines == expected:
                return lines
            error = FhirResponseError(
                f"bulk output had {lines} lines, the manifest said {expected}",
                url=safe_url(url),
                practice=ctx.ods,
            )
        if not error.retryable or attempt >= ctx.client.policy.max_attempts:
            raise error
        retry_after = getattr(error, "retry_after", None)
        await ctx.sleep(backoff_delay(ctx.client.policy, attempt, rng, retry_after))


async def read_by_bulk(
    ctx: PracticeContext,
    register: RegisterDefinition,
    watermark: datetime | None,
    group_id: str | None,
) -> RegisterRead:
    """Read a register by exporting its Group: in full, or ``_since`` the watermark."""
    full = watermark is None or group_id is None
    if group_id is None:
        group, _ = await find_group(ctx, register.name, None)
        group_id = str(group["id"])
    since = None if full or watermark is None else watermark - ctx.overlap
    status_url = await kick_off(ctx, group_id, since)
    manifest = await wait_for_manifest(ctx, status_url)
    sink = ConditionSink(ctx.db, ctx.ods, register, ctx.clock.now(), full=full)
    requires_token = bool(manifest.get("requiresAccessToken", True))

    def conditions(batch: list[JSON]) -> None:
        sink.add([r for r in batch if r.get("resourceType") == "Condition"])
        sink.flush()
        ctx.report(register.name, len(batch))

    def patients(batch: list[JSON]) -> None:
        sink.add([], batch)
        sink.flush()

    for output in manifest["output"]:
        kind = output.get("type") if isinstance(output, dict) else None
        if kind == "Condition":
            await read_output(ctx, output, requires_token, conditions)
        elif kind == "Patient":
            await read_output(ctx, output, requires_token, patients)
    if manifest.get("error"):
        log.warning(
            "bulk export reported %d error file(s)",
            len(manifest["error"]),
            extra={"practice": ctx.ods, "register": register.name},
        )
    if not full and watermark is not None:
        await _drop_leavers(ctx, sink, register, group_id, watermark)
    change = sink.finish(delete_unseen=True)
    await _forget_export(ctx, status_url)
    transaction_time = parse_instant(manifest.get("transactionTime"))
    return RegisterRead(
        register.name,
        full,
        scanned=sink.scanned,
        change=change,
        watermark=transaction_time or watermark,
        server_time=transaction_time,
        status_changed=sink.status_changed,
        resource_id=group_id,
    )


async def _drop_leavers(
    ctx: PracticeContext,
    sink: ConditionSink,
    register: RegisterDefinition,
    group_id: str,
    watermark: datetime,
) -> None:
    """A ``_since`` export says nothing about members who left the Group; ask the Group."""
    group = await changed_group(ctx, group_id, watermark)
    if group is None:
        return
    members = set(active_members(group, ctx.clock.now().astimezone(ctx.sync.zone).date()))
    with ctx.db.session() as session:
        rows = session.exec(
            select(RegisterCondition.patient_id).where(
                RegisterCondition.practice_ods == ctx.ods,
                RegisterCondition.register_name == register.name,
            )
        )
        gone = set(rows) - members
        delete_patients(session, ctx.ods, register.name, gone)
    sink.touched |= gone


async def _forget_export(ctx: PracticeContext, status_url: str) -> None:
    """Tell the server we are done with the files (best effort)."""
    try:
        await ctx.client.request("DELETE", status_url)
    except FhirError as exc:
        log.info("could not delete a finished bulk export: %s", exc)
