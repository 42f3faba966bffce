"""The progress display of ``sync --once``: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io

from healthy_homes.connector.progress import progress_display


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only() -> None:
    screen = Terminal()
    with progress_display(["A12345", "B22222"], screen) as hook:
        assert hook is not None
        hook("A12345", "copd", 150)
        hook("A12345", "asthma", 50)
        hook("Z99999", "copd", 5)  # not shown, not an error
    text = screen.getvalue()
    assert "A12345" in text and "B22222" in text and "200 resources" in text

    piped = io.StringIO()
    with progress_display(["A12345"], piped) as hook:
        assert hook is None
    assert piped.getvalue() == ""
