"""Actors are user ids: officers' actions, sign-out and failed sign-ins over HTTP.

The housing inbox stands in for every app (they share the sign-in code). A failed
sign-in names the account's id, or for a name nobody has only its keyed hash: what an
attacker types never reaches the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from healthy_homes.accounts import users
from healthy_homes.audit import verify_log
from healthy_homes.store.audit_models import AuditEntry
from healthy_homes.store.models import HousingReferral
from healthy_homes.web.csrf import COOKIE, sign
from tests.access.apps import NOW, SECRET, AccessWorld, build_world
from tests.access.inbox import inbox_client, sign_in

ATTACKER_TEXT = "Robert'); DROP TABLE audit;--"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    built = build_world(tmp_path)
    yield built
    built.db.dispose()


def _entries(world: AccessWorld) -> list[AuditEntry]:
    with world.db.session() as session:
        assert verify_log(session).ok
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def _user_id(world: AccessWorld, username: str) -> str:
    with world.db.session() as session:
        user = users.find(session, username)
        assert user is not None
        return user.id


def test_an_officers_action_names_their_user_id_and_role_not_their_name(
    world: AccessWorld,
) -> None:
    with world.db.session() as session:
        row = HousingReferral(
            team_id="north",
            referral_identifier="ref-1",
            dataset={"practice_ods": "A12345"},
            received_at=NOW,
            updated_at=NOW,
        )
        session.add(row)
        session.flush()
        referral_id = row.id
    with inbox_client(world) as client:
        assert sign_in(client, "officer") == 303
        token = sign(SECRET, client.cookies[COOKIE])
        done = client.post(f"/referrals/{referral_id}/accept", data={"csrf_token": token})
        assert done.status_code == 303 and "done=accept" in done.headers["location"]
        # The team's own activity log still shows the officer's name.
        assert "Officer" in client.get(f"/referrals/{referral_id}").text
    [accepted] = [e for e in _entries(world) if e.action == "housing.accepted"]
    assert (accepted.actor, accepted.role) == (_user_id(world, "officer"), "housing_officer")
    assert "Officer" not in accepted.actor


def test_sign_out_is_one_entry_naming_the_user(world: AccessWorld) -> None:
    with inbox_client(world) as client:
        assert sign_in(client, "manager") == 303
        token = sign(SECRET, client.cookies[COOKIE])
        assert client.post("/sign-out", data={"csrf_token": token}).status_code == 303
    found = [(e.action, e.actor, e.role) for e in _entries(world)]
    manager = _user_id(world, "manager")
    assert found == [
        ("user.signed-in", manager, "housing_manager"),
        ("user.signed-out", manager, "housing_manager"),
    ]


def test_failed_sign_ins_name_the_account_or_a_keyed_hash_never_the_typed_text(
    world: AccessWorld,
) -> None:
    with inbox_client(world) as client:
        assert sign_in(client, "officer", "not the password") == 400
        assert sign_in(client, ATTACKER_TEXT, "anything at all") == 400
        assert sign_in(client, ATTACKER_TEXT, "anything again") == 400
    failed = [e for e in _entries(world) if e.action == "user.sign-in-failed"]
    assert len(failed) == 3
    known, unknown, again = failed
    assert (known.actor, known.role) == (_user_id(world, "officer"), "housing_officer")
    assert unknown.actor.startswith("unknown:") and unknown.role == "unknown"
    assert unknown.actor == again.actor  # the same name: the same hash, so repeats show
    for entry in failed:
        text = " ".join(str(v) for v in entry.model_dump().values())
        assert "DROP TABLE" not in text and "Robert" not in text


def test_attempts_while_paused_add_nothing(world: AccessWorld) -> None:
    with inbox_client(world) as client:
        for _ in range(8):  # five are counted, then sign-in is paused for the name
            assert sign_in(client, "officer", "not the password") == 400
    assert sum(e.action == "user.sign-in-failed" for e in _entries(world)) == 5
