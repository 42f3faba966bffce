"""The walking skeleton end to end: real servers on loopback ports, real HTTP, no mocks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthy_homes.cli import main
from healthy_homes.clock import FixedClock
from healthy_homes.demo.scenario import Demo
from healthy_homes.fhir.client import FhirClient
from healthy_homes.fhir.systems import HH_FLAG_ID, NHS_NUMBER
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.referrals.forward import forward_referral
from healthy_homes.store.models import Referral, ReferralStatus
from tests.e2e.oracle import expected_flagged, fetch_all

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
REGISTER_WORDS = ("copd", "asthma", "falls", "frailty", "13645005", "195967001", "register")


def _nhs(patient: dict) -> str:
    return next(i["value"] for i in patient["identifier"] if i["system"] == NHS_NUMBER)


def test_demo_flow(tmp_path: Path) -> None:
    with Demo(tmp_path, patients=300, seed=7, clock=FixedClock(NOW)) as demo:
        result = asyncio.run(demo.run())
        practice_patients = {p["id"]: p for p in fetch_all(demo.practice_url, "Patient")}

        # Exactly the eligible register patients get flags, in our store and in the record.
        eligible = expected_flagged(demo.practice_url, NOW.date())
        assert eligible, "the synthetic practice must have register patients"
        flags = fetch_all(demo.practice_url, "Flag")
        ours = [f for f in flags if any(i["system"] == HH_FLAG_ID for i in f["identifier"])]
        flagged_in_record = {f["subject"]["reference"].split("/")[-1] for f in ours}
        assert flagged_in_record == eligible
        assert len(ours) == len(eligible)  # one Flag each, no duplicates
        run = result.run.practices[0]
        assert run.error is None and run.flags is not None
        assert set(run.flags.raised) == eligible

        # The clinician acted on two flags; their FHIR Flags are now inactive.
        consented, declined = result.consented_patient, result.declined_patient
        assert consented and declined and consented != declined
        by_subject = {f["subject"]["reference"].split("/")[-1]: f for f in ours}
        assert by_subject[consented]["status"] == "inactive"
        assert by_subject[declined]["status"] == "inactive"

        # The consented referral arrived once, carrying the minimum dataset only.
        received = result.housing_received
        assert len(received["ServiceRequest"]) == 1
        assert len(received["Task"]) == 1 and received["Task"][0]["status"] == "requested"
        assert len(received["Consent"]) == 1
        assert received["Consent"][0]["provision"]["type"] == "permit"
        [patient] = received["Patient"]
        assert _nhs(patient) == _nhs(practice_patients[consented])
        assert set(patient) <= {
            "resourceType",
            "id",
            "meta",
            "identifier",
            "name",
            "address",
            "birthDate",
            "telecom",
        }
        dataset_fields = set(MinimumDataset.model_fields)
        assert dataset_fields == {
            "nhs_number",
            "given_name",
            "family_name",
            "birth_date",
            "address_lines",
            "city",
            "postcode",
            "phone",
            "practice_ods",
            "referrer",
            "reason",
            # The referral form's answers (tenure, concerns, contact, staff risks only
            # with consent): what the housing team needs and the GP record lacks.
            "referral_form",
        }
        everything = json.dumps(received).lower()
        for word in REGISTER_WORDS:
            assert word not in everything, f"register detail '{word}' left the practice"
        assert result.referral_status == "requested"

        # Nothing about the declined patient reached the housing endpoint.
        declined_patient = practice_patients[declined]
        for marker in (
            _nhs(declined_patient),
            declined_patient["name"][0]["family"],
            declined_patient["address"][0]["postalCode"],
        ):
            assert marker.lower() not in everything

        # Arrives once: a retry after a lost acknowledgement creates nothing new.
        with demo.db.session() as session:
            row = session.get(Referral, result.referral_id)
            assert row is not None
            row.status = ReferralStatus.PENDING
            session.add(row)
        service = demo.settings.housing_services[0]  # type: ignore[union-attr]

        async def resend() -> None:
            async with FhirClient(demo.housing_url) as housing:
                await forward_referral(demo.db, housing, row.id, service, demo.clock)

        asyncio.run(resend())
        again = asyncio.run(demo.housing_contents())
        assert {k: len(v) for k, v in again.items()} == {
            "Patient": 1,
            "Consent": 1,
            "ServiceRequest": 1,
            "Task": 1,
        }

        # Running the connector again raises no second flag for anyone.
        from healthy_homes.connector.run import run_once

        rerun = asyncio.run(run_once(demo.settings, demo.db, demo.clock))  # type: ignore[arg-type]
        assert rerun.practices[0].flags is not None
        assert rerun.practices[0].flags.raised == []
        assert len([f for f in fetch_all(demo.practice_url, "Flag")]) == len(ours)


def test_demo_command_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--patients", "200", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "patients on at least one register" in out
    assert "flags raised:" in out
    assert "Referrals sent: 1" in out
    assert "ServiceRequest:" in out and "Task:" in out


def test_every_command_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    top = capsys.readouterr().out
    commands = ["init", "config", "db", "sync", "mock-server", "demo"]
    for command in commands:
        assert command in top
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert f"usage: healthy-homes {command}" in text and len(text) > 150


def test_module_entry_point_runs() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "healthy_homes", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("healthy-homes ")
