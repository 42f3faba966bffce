"""``healthy-homes users``: passwords only from a prompt or stdin, roles fit organisations."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from healthy_homes.accounts import DatabaseAccounts
from healthy_homes.cli import main
from healthy_homes.clock import SystemClock
from healthy_homes.housing.teams import add_team
from healthy_homes.store.db import Database

SECRET = "a long enough password"


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    monkeypatch.setenv("HEALTHY_HOMES__STORAGE__URL", url)
    monkeypatch.chdir(tmp_path)
    db = Database(url)
    db.upgrade()
    with db.session() as session:
        add_team(session, "north", "North team", SystemClock().now())
    db.dispose()
    return url


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _can_sign_in(url: str, username: str, password: str) -> bool:
    db = Database(url)
    try:
        return (
            DatabaseAccounts(db, SystemClock()).sign_in(username, password, "1.2.3.4") is not None
        )
    finally:
        db.dispose()


def test_add_list_disable_and_set_password(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, SECRET + "\n")
    add = ["users", "add", "dr.a", "--role", "clinician", "--org", "A12345", "--name", "Dr A"]
    assert main([*add, "--password-stdin"]) == 0
    _stdin(monkeypatch, SECRET + "\n")
    manager = ["users", "add", "mo", "--role", "housing-manager", "--org", "north"]
    assert main([*manager, "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["users", "list"]) == 0
    listed = capsys.readouterr().out
    assert "dr.a\tclinician\tA12345\tactive\tDr A" in listed
    assert "mo\thousing_manager\tnorth\tactive" in listed
    assert SECRET not in listed and "scrypt" not in listed
    assert _can_sign_in(db_url, "dr.a", SECRET)

    assert main(["users", "disable", "dr.a"]) == 0
    assert not _can_sign_in(db_url, "dr.a", SECRET)
    assert main(["users", "disable", "dr.a", "--enable"]) == 0
    _stdin(monkeypatch, "another long password\n")
    assert main(["users", "set-password", "dr.a", "--password-stdin"]) == 0
    assert not _can_sign_in(db_url, "dr.a", SECRET)
    assert _can_sign_in(db_url, "dr.a", "another long password")


def test_the_prompt_asks_twice(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([SECRET, SECRET + "!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    add = ["users", "add", "dr.b", "--role", "clinician", "--org", "A12345"]
    assert main(add) == 2  # the two differ
    answers = iter([SECRET, SECRET])
    assert main(add) == 0


def test_a_password_is_never_taken_from_the_command_line(db_url: str) -> None:
    with pytest.raises(SystemExit):
        main(["users", "add", "x", "--role", "clinician", "--org", "A12345", "--password", SECRET])


@pytest.mark.parametrize(
    ("role", "org", "password"),
    [
        ("housing-officer", "no-such-team", SECRET),  # a housing role needs a real team
        ("clinician", "not an ods code", SECRET),
        ("clinician", "A12345", "short"),  # 12 characters at least
    ],
)
def test_bad_accounts_are_refused_with_a_reason(
    db_url: str, monkeypatch: pytest.MonkeyPatch, role: str, org: str, password: str
) -> None:
    _stdin(monkeypatch, password + "\n")
    add = ["users", "add", "someone", "--role", role, "--org", org, "--password-stdin"]
    assert main(add) == 2
