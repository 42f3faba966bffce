"""Delivery worker processes for the crash test, forked from one that has loaded everything.

``python worker_process.py CONFIG LOG_DIR`` loads the settings and the delivery code
once, prints ``ready`` and then answers one command a line on stdin:

- ``start``: fork a worker that runs :func:`deliver` once (the same code as
  ``healthy-homes referrals deliver --once``), stderr to ``LOG_DIR/worker-PID.err``;
  answers its pid.
- ``poll PID``: ``running``, or ``exit CODE`` once it has ended on its own.
- ``kill PID``: SIGKILL it if it still runs: ``killed``, or ``exit CODE`` if it had ended.

Each worker is a process of its own that the test kills mid-stream; forking it from a
process that has already imported everything makes a restart cost milliseconds instead
of a second of imports, which the test would otherwise pay 20 times over (and which
grows with the machine's load). This process reaps its workers (they are its children),
so a pid is never signalled after it could have been reused. End of input: every
worker still running is killed and the process exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from pathlib import Path

from healthy_homes.config.loader import load_settings
from healthy_homes.config.models import Settings
from healthy_homes.connector.delivery.cli import deliver
from healthy_homes.referrals.transports import fhir_rest  # noqa: F401  (loaded before the fork)
from healthy_homes.store.db import Database


def _work(settings: Settings, log_dir: Path) -> int:
    """In the forked child: deliver what is due, then exit (never return to the loop)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the commands are the parent's, not ours
    os.dup2(devnull, 1)
    err = os.open(log_dir / f"worker-{os.getpid()}.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(err, 2)
    try:
        db = Database(settings.storage.url)  # an engine of its own, made after the fork
        try:
            asyncio.run(deliver(settings, db, once=True))
        finally:
            db.dispose()
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _status(pid: int, *, block: bool = False) -> str | None:
    """``exit CODE`` once the child has ended (reaping it), else None."""
    done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    if not done:
        return None
    return f"exit {os.waitstatus_to_exitcode(status)}"


def _answer(command: str, arg: str, settings: Settings, log_dir: Path, running: set[int]) -> str:
    if command == "start":
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _work(settings, log_dir)
            finally:
                os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
        running.add(pid)
        return str(pid)
    if command not in ("poll", "kill") or not arg.isdigit() or int(arg) not in running:
        return f"unknown: {command} {arg}"
    pid = int(arg)
    answer = _status(pid)
    if answer is None and command == "poll":
        return "running"
    if answer is None:
        os.kill(pid, signal.SIGKILL)
        _status(pid, block=True)
        answer = "killed"
    running.discard(pid)
    return answer


def main() -> int:
    """Load, say ready, then start, poll and kill workers as told."""
    settings = load_settings(sys.argv[1])
    log_dir = Path(sys.argv[2])
    running: set[int] = set()
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        print(_answer(command, arg, settings, log_dir, running), flush=True)
    for pid in running:  # the test went away: leave nothing behind
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
