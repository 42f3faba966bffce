"""The prompt board: what each open page hears, and when."""

from __future__ import annotations

from datetime import UTC, datetime

from healthy_homes.flags.popup.board import Health, PromptBoard, Subscriber
from healthy_homes.flags.popup.prompts import Prompt
from healthy_homes.flags.popup.watch import Arrival
from healthy_homes.web.identity import Clinician
from healthy_homes.web.sse import Event

ANYONE = Clinician("u1", "Dr Any")
DR_GREEN = Clinician("u2", "Dr Green", "Practitioner/green")


def _prompt(flag_id: str, practitioner: str = "Practitioner/green") -> Prompt:
    arrival = Arrival(
        flag_id,
        f"p-{flag_id}",
        f"a-{flag_id}",
        datetime(2026, 11, 24, 9, tzinfo=UTC),
        "arrived",
        frozenset({practitioner}),
    )
    return Prompt(arrival, "Ann EXAMPLE", "1 May 1940", "09:00", ("On COPD register",), 1)


def _drain(subscriber: Subscriber) -> list[Event | None]:
    events = []
    while not subscriber.queue.empty():
        events.append(subscriber.queue.get_nowait())
    return events


def _names(subscriber: Subscriber) -> list[str]:
    return [e.name if e else "end" for e in _drain(subscriber)]


def test_pages_get_a_snapshot_then_arrivals_and_resolutions() -> None:
    board = PromptBoard()
    board.update({"f1": _prompt("f1")}, announce=False)  # already in when the app started
    page = board.subscribe(ANYONE)
    first = _drain(page)
    assert [e.name for e in first if e] == ["snapshot", "status"]
    assert first[0] is not None and [p["flagId"] for p in first[0].data["prompts"]] == ["f1"]
    board.update({"f1": _prompt("f1"), "f2": _prompt("f2")})
    assert _names(page) == ["arrived"]
    board.update({"f2": _prompt("f2")})
    assert _names(page) == ["resolved"]
    board.set_health(Health(False, "down"))
    board.set_health(Health(False, "down"))  # unchanged: said once
    assert _names(page) == ["status"]
    board.close()
    assert _names(page) == ["end"]


def test_a_clinician_with_a_practitioner_hears_only_their_patients() -> None:
    board = PromptBoard()
    green, anyone = board.subscribe(DR_GREEN), board.subscribe(ANYONE)
    _drain(green), _drain(anyone)
    board.update({"f1": _prompt("f1", "Practitioner/blue"), "f2": _prompt("f2")})
    assert [e.data["flagId"] for e in _drain(green) if e] == ["f2"]
    assert len(_drain(anyone)) == 2
    assert [p.flag_id for p in board.visible_to(DR_GREEN)] == ["f2"]


def test_an_answered_prompt_is_not_brought_back_by_a_poll_that_started_earlier() -> None:
    board = PromptBoard()
    page = board.subscribe(ANYONE)
    board.update({"f1": _prompt("f1")})
    _drain(page)
    board.answer("f1")
    assert _names(page) == ["resolved"]
    board.update({"f1": _prompt("f1")})  # a poll that read the flags before the answer
    assert _names(page) == []
    board.update({})  # the next poll has seen the outcome
    board.update({"f1": _prompt("f1")})  # open again later (a snooze ran out)
    assert _names(page) == ["arrived"]


def test_a_page_that_cannot_keep_up_is_cut_off_and_reconnects() -> None:
    board = PromptBoard()
    page = board.subscribe(ANYONE)
    for n in range(200):
        board.update({f"f{n}": _prompt(f"f{n}")})
    assert _drain(page) == [None]
