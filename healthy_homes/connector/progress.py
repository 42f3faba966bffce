"""A progress display for ``sync --once``: one line per practice, quiet when not a TTY."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from healthy_homes.connector.context import ProgressHook


@contextmanager
def progress_display(
    practices: list[str], stream: TextIO | None = None
) -> Iterator[ProgressHook | None]:
    """Yield a progress hook drawing a live display, or None when output is not a terminal."""
    out = stream or sys.stdout
    if not out.isatty():
        yield None
        return
    console = Console(file=out)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:>8.0f} resources"),
        TextColumn("{task.fields[stream]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {
            ods: progress.add_task(ods, total=None, stream="") for ods in practices
        }

        def hook(practice: str, stream_name: str, count: int) -> None:
            task = tasks.get(practice)
            if task is not None:
                progress.update(task, advance=count, stream=stream_name)

        yield hook
        for task in tasks.values():
            progress.update(task, total=progress.tasks[task].completed or 1, stream="done")
