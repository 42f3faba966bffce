"""Issue 7's acceptance scan: no test patient's identifiers in plaintext at rest or in logs.

The end-to-end flow runs once on SQLite and once on PostgreSQL: the demo practice is
synced, flags raised, one patient consents and is referred (to the mock housing server),
another declines; the same referral is then delivered to the housing inbox, which
shares the store, and an officer records a contact note naming the patient. Every log
record of the process goes to a file at DEBUG. Then the SQLite file (and its WAL),
a ``pg_dump`` of the database and the log files are searched for every synthetic
patient's name, NHS number (with and without spaces), address lines, postcode and phone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from healthy_homes.clock import FixedClock
from healthy_homes.config.models import AuthConfig, FhirHousingService
from healthy_homes.demo.scenario import Demo
from healthy_homes.fhir.systems import NHS_NUMBER
from healthy_homes.housing import workflow
from healthy_homes.housing.app import create_housing_app
from healthy_homes.housing.teams import add_team
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.referrals.transports.base import ReferralEnvelope
from healthy_homes.referrals.transports.fhir_rest import make
from healthy_homes.serving import ServerThread
from healthy_homes.store.lookups import housing_referrals_by_nhs_number, referrals_by_nhs_number
from healthy_homes.store.models import ConsentRecord, HousingReferral, Referral
from tests.e2e.oracle import fetch_all

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PATIENTS = 150
#: Shorter needles turn up by chance in kilobytes of ciphertext; they are still
#: searched for as part of the full name.
MIN_NEEDLE = 5


def identifiers(patient: dict[str, Any]) -> set[str]:
    """Every identifying string of one synthetic patient, in the forms it may be written."""
    found: set[str] = set()
    for ident in patient.get("identifier") or []:
        if ident.get("system") == NHS_NUMBER:
            nhs = ident["value"]
            found |= {nhs, f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"}
    for name in patient.get("name") or []:
        given = list(name.get("given") or [])
        found.add(" ".join([*given, name.get("family", "")]).strip())
        found |= {part for part in [*given, name.get("family", "")] if len(part) >= MIN_NEEDLE}
    for telecom in patient.get("telecom") or []:
        if telecom.get("value"):
            found |= {telecom["value"], telecom["value"].replace(" ", "")}
    for address in patient.get("address") or []:
        found |= {line for line in address.get("line") or [] if len(line) >= MIN_NEEDLE}
        if postcode := address.get("postalCode"):
            found |= {postcode, postcode.replace(" ", "")}
    return {needle for needle in found if len(needle) >= MIN_NEEDLE}


def plaintext_found(blobs: dict[str, bytes], patients: list[dict[str, Any]]) -> list[str]:
    """``what in where`` for each identifier found in any blob."""
    hits = []
    for patient in patients:
        for needle in sorted(identifiers(patient)):
            raw = needle.encode("utf-8")
            # pg_dump writes bytea as hex: plaintext in a bytea column shows up that way.
            forms = (raw, raw.hex().encode("ascii"))
            hits += [
                f"{needle!r} in {where}"
                for where, blob in blobs.items()
                if any(form in blob for form in forms)
            ]
    return hits


@pytest.fixture
def debug_logs(tmp_path: Path) -> Iterator[Path]:
    """Every log record of this process, at DEBUG, written to files under the returned folder."""
    folder = tmp_path / "logs"
    folder.mkdir()
    handler = logging.FileHandler(folder / "healthy-homes.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(n) for n in list(root.manager.loggerDict))]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    # A logger that does not propagate (uvicorn's) would bypass the root handler.
    isolated = [lg for lg in loggers if not lg.propagate and lg is not root]
    for logger in isolated:
        logger.addHandler(handler)
    try:
        yield folder
    finally:
        root.removeHandler(handler)
        for logger in isolated:
            logger.removeHandler(handler)
        for logger, level in levels.items():
            logger.setLevel(level)
        handler.close()


async def _deliver_to_inbox(demo: Demo, inbox_base: str, token: str, referral_id: str) -> None:
    service = FhirHousingService(
        id="north",
        name="North Healthy Homes",
        fhir_base_url=inbox_base,  # type: ignore[arg-type]
        auth=AuthConfig(kind="bearer", token=token),  # type: ignore[arg-type]
    )
    with demo.db.session() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        consent = session.get(ConsentRecord, referral.consent_id)
        assert consent is not None
    envelope = ReferralEnvelope(
        referral_id=referral_id,
        practice_ods=referral.practice_ods,
        dataset=MinimumDataset.model_validate(referral.dataset),
        consent=consent,
        service=service,
        authored=NOW,
        correlation_id="ig-scan",
    )
    transport = make(service, clock=FixedClock(NOW), http=None)
    try:
        await transport.deliver(envelope)
    finally:
        await transport.aclose()


def _officer_notes(demo: Demo, ds: dict[str, Any]) -> None:
    """An officer accepts and records a contact naming the patient (free text, encrypted)."""
    note = (
        f"Spoke to {ds['given_name']} {ds['family_name']} on {ds['phone']} about "
        f"{', '.join(ds['address_lines'])}, {ds['postcode']} (NHS {ds['nhs_number']})"
    )
    with demo.db.session() as session:
        [row] = session.exec(select(HousingReferral)).all()
        workflow.accept(session, row, "Officer Test", NOW)
        workflow.record(session, row, "contact", note, "Officer Test", NOW)


def run_flow(workdir: Path, db_url: str | None) -> tuple[Demo, list[dict[str, Any]]]:
    """The end-to-end flow; returns the (closed) demo and the practice's patients."""
    with Demo(workdir, patients=PATIENTS, seed=7, clock=FixedClock(NOW), db_url=db_url) as demo:
        result = asyncio.run(demo.run())
        assert result.referral_id and result.consented_patient and result.declined_patient
        patients = fetch_all(demo.practice_url, "Patient")
        with demo.db.session() as session:
            token = add_team(session, "north", "North Healthy Homes", NOW)
        app = create_housing_app(db=demo.db, csrf_secret=secrets.token_bytes(32), clock=demo.clock)
        inbox = ServerThread(app, log_level="debug")
        inbox.start()
        try:
            base = f"{inbox.url}/teams/north/fhir"
            asyncio.run(_deliver_to_inbox(demo, base, token, result.referral_id))
        finally:
            inbox.stop()
        with demo.db.session() as session:
            referral = session.get(Referral, result.referral_id)
            assert referral is not None
            ds = referral.dataset
        _officer_notes(demo, ds)
        # The data is there and readable, and findable by NHS number through the keyed hash.
        with demo.db.session() as session:
            assert [r.id for r in referrals_by_nhs_number(session, ds["nhs_number"])] == [
                result.referral_id
            ]
            [received] = housing_referrals_by_nhs_number(session, ds["nhs_number"])
            assert received.dataset["family_name"] == ds["family_name"]
            notes = [a.text for a in workflow.activity(session, received.id)]
            assert any(note.startswith("Spoke to") for note in notes)
    return demo, patients


def _files(folder: Path, prefix: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith(prefix)}


def test_sqlite_file_wal_and_logs_hold_no_plaintext(tmp_path: Path, debug_logs: Path) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    snapshots: dict[str, bytes] = {}

    original_exit = Demo.__exit__

    def snapshot_then_exit(self: Demo, *exc: Any) -> None:
        # While connections are open the newest pages live in the -wal file.
        snapshots.update({f"open:{k}": v for k, v in _files(workdir, "healthy-homes-demo").items()})
        original_exit(self, *exc)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Demo, "__exit__", snapshot_then_exit)
        _, patients = run_flow(workdir, None)
    assert any(name.endswith("-wal") for name in snapshots), snapshots.keys()
    blobs = snapshots | _files(workdir, "healthy-homes-demo") | _files(debug_logs, "")
    assert sum(len(b) for k, b in blobs.items() if "log" in k) > 10_000, "logs were captured"
    hits = plaintext_found(blobs, patients)
    assert not hits, "identifiers in plaintext:\n" + "\n".join(hits)


@pytest.mark.postgres
def test_postgres_dump_and_logs_hold_no_plaintext(
    tmp_path: Path, debug_logs: Path, postgres_url: str
) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    _, patients = run_flow(workdir, postgres_url)
    url = make_url(postgres_url)
    dump = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            f"--host={url.host}",
            f"--port={url.port or 5432}",
            f"--username={url.username}",
            str(url.database),
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert b"COPY public.housing_activity" in dump and b"COPY public.referral " in dump
    blobs = {"pg_dump": dump} | _files(debug_logs, "")
    hits = plaintext_found(blobs, patients)
    assert not hits, "identifiers in plaintext:\n" + "\n".join(hits)
