"""Consented referrals queued in the outbox, written straight to the store (synthetic data).

Used by the delivery tests and ``bench/delivery_bench.py``. Each referral gets its
own flag and consent, as the clinician's "consent and refer" would leave them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert

from healthy_homes.config.models import DeliveryConfig, HousingServiceConfig
from healthy_homes.referrals.dataset import MinimumDataset
from healthy_homes.store.db import Database
from healthy_homes.store.models import (
    ConsentDecision,
    ConsentRecord,
    FlagRecord,
    OutboxEntry,
    OutboxState,
    Referral,
    ReferralStatus,
)

SERVICE_ID = "housing"


_VALID: list[str] = []


def nhs_number(n: int) -> str:
    """The n-th valid synthetic NHS number in the 999 range (Modulus 11 check digit)."""
    k = int(_VALID[-1][3:9]) + 1 if _VALID else 0
    while len(_VALID) <= n:
        digits = f"999{k:06d}"
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        if check != 10:
            _VALID.append(digits + str(0 if check == 11 else check))
        k += 1
    return _VALID[n]


def dataset(n: int) -> dict[str, Any]:
    """The minimum dataset of synthetic patient ``n``."""
    return MinimumDataset.model_validate(
        {
            "nhs_number": nhs_number(n),
            "given_name": "Ann",
            "family_name": f"Test{n}",
            "birth_date": "1940-01-01",
            "address_lines": [f"{n} High Street"],
            "city": "North Shields",
            "postcode": "NE29 6AB",
            "phone": None,
            "practice_ods": "A12345",
            "referrer": "Dr X",
        }
    ).model_dump(mode="json")


def service(url: str) -> HousingServiceConfig:
    """A FHIR housing service at ``url``."""
    return HousingServiceConfig.model_validate(
        {"id": SERVICE_ID, "name": "Housing", "fhir_base_url": url}
    )


def fast_config(**changes: Any) -> DeliveryConfig:
    """Delivery settings for tests: small backoff, few attempts."""
    base: dict[str, Any] = {
        "concurrency": 8,
        "max_attempts": 4,
        "backoff_base_seconds": 1.0,
        "backoff_cap_seconds": 30.0,
        "lease_seconds": 30.0,
        "send_timeout_seconds": 10.0,
    }
    base.update(changes)
    return DeliveryConfig.model_validate(base)


def enqueue(db: Database, count: int, now: datetime, *, start: int = 0) -> list[str]:
    """Queue ``count`` consented referrals (flag, consent, referral, outbox entry each)."""
    flags: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    referrals: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for n in range(start, start + count):
        flag = FlagRecord(
            practice_ods="A12345",
            patient_id=f"p{n}",
            rule_set_version="t",
            created_at=now,
            updated_at=now,
        )
        consent = ConsentRecord(
            practice_ods="A12345",
            patient_id=f"p{n}",
            flag_id=flag.id,
            decision=ConsentDecision.GIVEN,
            recorded_by="Dr X",
            wording_version="2026-1",
            recorded_at=now,
        )
        referral = Referral(
            practice_ods="A12345",
            patient_id=f"p{n}",
            consent_id=consent.id,
            flag_id=flag.id,
            housing_service_id=SERVICE_ID,
            dataset=dataset(n),
            status=ReferralStatus.PENDING,
            created_at=now,
        )
        flags.append(flag.model_dump())
        consents.append(consent.model_dump())
        referrals.append(referral.model_dump())
        entries.append(
            {
                "referral_id": referral.id,
                "housing_service_id": SERVICE_ID,
                "state": OutboxState.PENDING.value,
                "attempts": 0,
                "dead_count": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    with db.session() as session:
        for table, rows in (
            (FlagRecord, flags),
            (ConsentRecord, consents),
            (Referral, referrals),
            (OutboxEntry, entries),
        ):
            session.execute(insert(table), rows)
    return [r["id"] for r in referrals]
