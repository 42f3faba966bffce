"""'healthy-homes housing serve --smtp-port ...' as a real process on free loopback ports.

The SMTP intake it starts offers STARTTLS and insists on it, refuses a mailbox that
is not one of its teams with 550, and accepts a team's mailbox.
"""

from __future__ import annotations

import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthy_homes.cli import main
from tests.transports.test_email import _self_signed

ROOT = Path(__file__).parents[2]
DOMAIN = "inbox.test"


def _free_port() -> int:
    # Free a moment ago; --smtp-port 0 would mean "no intake", so a number is needed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The command serving the inbox and its SMTP intake: (SMTP port, CA file)."""
    config = tmp_path / "housing.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "housing.db"}"\n')
    assert main(["housing", "add-team", "north", "--name", "North", "--config", str(config)]) == 0
    cert, key = _self_signed(tmp_path, "inbox-smtp")
    smtp_port = _free_port()
    command = [
        sys.executable,
        "-m",
        "healthy_homes",
        "housing",
        "serve",
        "--config",
        str(config),
        "--port",
        str(_free_port()),
        "--smtp-port",
        str(smtp_port),
        "--mail-domain",
        DOMAIN,
        "--smtp-cert",
        str(cert),
        "--smtp-key",
        str(key),
    ]
    errors = tmp_path / "stderr.log"  # a file, not a pipe nobody reads (it could fill)
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT
        )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if re.match(rf"Mail intake: 127\.0\.0\.1:{smtp_port}, TEAM@{DOMAIN}", line):
                break
        else:
            pytest.fail(f"no mail intake: {errors.read_text()}")
        yield smtp_port, cert
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_starttls_is_offered_and_required_and_unknown_teams_are_refused(
    intake: tuple[int, Path],
) -> None:
    port, ca_file = intake
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("practice.test")
        assert smtp.has_extn("starttls")
        # Nothing is taken in the clear.
        code, _ = smtp.mail("referrals@practice.test")
        assert code == 530
        smtp.starttls(context=ssl.create_default_context(cafile=str(ca_file)))
        smtp.ehlo("practice.test")
        assert smtp.mail("referrals@practice.test")[0] == 250
        code, message = smtp.rcpt(f"nobody@{DOMAIN}")
        assert code == 550 and b"no such housing team" in message
        assert smtp.rcpt("somebody@elsewhere.test")[0] == 550
        assert smtp.rcpt(f"north@{DOMAIN}")[0] == 250
