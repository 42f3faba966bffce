"""``healthy-homes mock-server`` flags: --fault/--faults, --load, --timeline, --export-polls."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from healthy_homes.cli import build_parser, main
from healthy_homes.errors import ConfigError
from healthy_homes.mock_server import cli, cli_options
from healthy_homes.mock_server.bulk import exports_of
from healthy_homes.mock_server.faults import injector_of
from healthy_homes.mock_server.housing import inbox_of
from healthy_homes.mock_server.server import build_server

SYNTHEA = Path(__file__).parent / "data" / "synthea"


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["mock-server", "--port", "0", *argv])


def test_flags_configure_faults_loading_and_export(tmp_path: Path) -> None:
    rules = tmp_path / "faults.toml"
    rules.write_text('[[rules]]\nmatch = "Patient"\nkind = "status"\nstatus = 500\n')
    args = _args(
        "--patients",
        "5",
        "--faults",
        str(rules),
        "--fault",
        "Condition:status=503,rate=0.5",
        "--fault-seed",
        "9",
        "--load",
        str(SYNTHEA),
        "--export-polls",
        "2",
    )
    server = build_server(patients=5, mode="practice")
    notes = cli_options.configure(server, args)
    config = injector_of(server.app).config
    assert config.seed == 9 and [r.status for r in config.rules] == [500, 503]
    assert exports_of(server.app).polls == 2
    assert server.store.count("Condition") >= 2
    assert notes[0] == "Faults: 2 rule(s), seed 9"
    assert "loaded 4 bundle(s): 11 resources created" in notes[1]


def test_housing_timeline_flag() -> None:
    server = build_server(mode="housing")
    cli_options.configure(server, _args("--mode", "housing", "--timeline", "accepted@1m"))
    assert inbox_of(server.app).timeline[0].delay == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--timeline", "accepted@1m"], "needs --mode housing"),
        (["--mode", "housing", "--timeline", "accepted"], "--timeline"),
        (["--fault", "Condition:frobnicate"], "unknown option"),
        (["--load", "/no/such/path"], "--load"),
        (["--export-polls", "-1"], "--export-polls"),
    ],
)
def test_bad_flags_are_config_errors(argv: list[str], problem: str) -> None:
    server = build_server(mode="housing" if "housing" in argv else "practice")
    with pytest.raises(ConfigError, match=problem):
        cli_options.configure(server, _args(*argv))


def test_bad_flag_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mock-server", "--patients", "0", "--fault", "nonsense"]) == 2
    assert "fault rule 'nonsense'" in capsys.readouterr().err


def test_help_documents_the_fault_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["mock-server", "--help"])
    out = capsys.readouterr().out
    assert "SELECTOR:FAULT[,OPTION...]" in out and "duplicate[=N]" in out


def test_housing_server_from_the_cli_serves_admin_endpoints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _args("--mode", "housing", "--fault", "Patient:status=503")
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(cli.run(args, stop)))
    thread.start()
    try:
        lines: list[str] = []
        while not any("Press Ctrl-C" in ln for ln in lines) and thread.is_alive():
            lines += capsys.readouterr().out.splitlines()
        base = next(ln.split()[-1] for ln in lines if "FHIR base" in ln)
        root = base.removesuffix("/fhir")
        assert any("/admin/tasks/ID/status" in ln for ln in lines)
        assert "Faults: 1 rule(s), seed 0" in lines
        assert httpx.get(f"{base}/Patient").status_code == 503
        assert httpx.get(f"{root}/admin/faults").json()["rules"][0]["fired"] == 1
        r = httpx.post(f"{root}/admin/tasks/none/status", json={"status": "accepted"})
        assert r.status_code == 404
    finally:
        stop.set()
        thread.join()
    assert result == [0]
