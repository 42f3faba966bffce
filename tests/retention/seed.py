"""Synthetic patients of every kind the retention policy treats differently."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel import Session

from healthy_homes.store.models import (
    ConsentRecord,
    FlagEvent,
    FlagRecord,
    FlagStatus,
    HousingActivity,
    HousingReferral,
    HousingTeam,
    OutboxEntry,
    PatientStatus,
    Referral,
    RegisterCondition,
    RegisterMembership,
    WatchedAppointment,
)

ODS = "A12345"


def patient(
    session: Session, pid: str, at: datetime, *, flag: str = FlagStatus.DECLINED
) -> FlagRecord:
    """Everything the connector keeps about one register patient, all last changed at ``at``."""
    session.add(
        RegisterMembership(practice_ods=ODS, register_name="copd", patient_id=pid, updated_at=at)
    )
    session.add(
        RegisterCondition(
            practice_ods=ODS,
            register_name="copd",
            condition_id=f"c-{pid}",
            patient_id=pid,
            role="diagnosis",
            updated_at=at,
        )
    )
    session.add(PatientStatus(practice_ods=ODS, patient_id=pid, updated_at=at))
    session.add(
        WatchedAppointment(
            practice_ods=ODS,
            appointment_id=f"a-{pid}",
            patient_id=pid,
            start=at,
            status="booked",
            updated_at=at,
        )
    )
    row = FlagRecord(
        practice_ods=ODS,
        patient_id=pid,
        registers=["copd"],
        reasons=["On COPD register"],
        rule_set_version="t",
        status=flag,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    session.add(FlagEvent(flag_id=row.id, practice_ods=ODS, kind="raised", at=at))
    if flag == FlagStatus.DECLINED:
        session.add(
            ConsentRecord(
                practice_ods=ODS,
                patient_id=pid,
                flag_id=row.id,
                decision="declined",
                recorded_by="u-clin-1",
                wording_version="w1",
                recorded_at=at,
            )
        )
    return row


def referred(session: Session, pid: str, at: datetime) -> Referral:
    """A patient referred (consent given, referral sent and delivered) at ``at``."""
    flag = patient(session, pid, at, flag=FlagStatus.ACCEPTED)
    consent = ConsentRecord(
        practice_ods=ODS,
        patient_id=pid,
        flag_id=flag.id,
        decision="given",
        recorded_by="u-clin-1",
        wording_version="w1",
        recorded_at=at,
    )
    session.add(consent)
    session.flush()
    referral = Referral(
        practice_ods=ODS,
        patient_id=pid,
        consent_id=consent.id,
        flag_id=flag.id,
        housing_service_id="hs",
        dataset={"nhs_number": "9990000018", "name": "Synthetic Person"},
        status="sent",
        created_at=at,
        sent_at=at,
    )
    session.add(referral)
    session.flush()
    session.add(
        OutboxEntry(
            referral_id=referral.id,
            housing_service_id="hs",
            state="delivered",
            next_attempt_at=at,
            created_at=at,
            updated_at=at,
            delivered_at=at,
        )
    )
    return referral


def housing_referral(session: Session, at: datetime, *, ended: bool) -> HousingReferral:
    """A referral in the housing inbox, received at ``at`` and ended then if ``ended``."""
    if session.get(HousingTeam, "team-a") is None:
        session.add(HousingTeam(id="team-a", name="Team A", token_hash="0" * 64, created_at=at))
        session.flush()
    row = HousingReferral(
        team_id="team-a",
        referral_identifier=str(uuid.uuid4()),
        dataset={"nhs_number": "9990000026"},
        received_at=at,
        status="completed" if ended else "in-progress",
        ended_at=at if ended else None,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    session.add(
        HousingActivity(referral_id=row.id, kind="note", text="called", by="Officer", at=at)
    )
    return row


def bulk_never_referred(session: Session, n: int, at: datetime) -> None:
    """Many old never-referred patients, so purging them frees pages."""
    for i in range(n):
        patient(session, f"bulk-{i}", at - timedelta(minutes=i))
