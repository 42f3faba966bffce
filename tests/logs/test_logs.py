"""Logs are structured JSON (or text) and never carry NHS numbers or query strings."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from healthy_homes.logs import configure_logging, log_context, make_handler, redact
from healthy_homes.serving import ServerThread

NHS = "9990001234"


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("healthy_homes.test_logs")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()
    log.propagate = True


def emit(logger: logging.Logger, fmt: str, *args: object, **kwargs: object) -> str:
    stream = io.StringIO()
    handler = make_handler(fmt, stream)  # type: ignore[arg-type]
    logger.addHandler(handler)
    try:
        logger.info(*args, **kwargs)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_record_has_the_fields_and_no_nhs_number(logger: logging.Logger) -> None:
    line = emit(
        logger,
        "json",
        "referral for %s sent to %s",
        "999 000 1234",
        "https://housing.example/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + NHS,
        extra={"practice": "A12345", "request_id": "req-1"},
    )
    record = json.loads(line)
    assert set(record) == {"ts", "level", "logger", "msg", "practice", "request_id"}
    assert record["level"] == "INFO"
    assert record["logger"] == "healthy_homes.test_logs"
    assert record["practice"] == "A12345" and record["request_id"] == "req-1"
    assert record["ts"].endswith("+00:00")
    assert NHS not in line and "999 000 1234" not in line and "identifier=" not in line
    assert record["msg"] == (
        "referral for [nhs-number] sent to https://housing.example/fhir/Patient?[redacted]"
    )


def test_context_fields_only_where_present(logger: logging.Logger) -> None:
    plain = json.loads(emit(logger, "json", "no context"))
    assert "practice" not in plain and "request_id" not in plain
    with log_context(practice="B99999", request_id="outer"), log_context(request_id="inner"):
        nested = json.loads(emit(logger, "json", "inside"))
    assert nested["practice"] == "B99999" and nested["request_id"] == "inner"
    assert "practice" not in json.loads(emit(logger, "json", "after"))


def test_tracebacks_and_text_format_are_redacted_too(logger: logging.Logger) -> None:
    stream = io.StringIO()
    logger.addHandler(make_handler("json", stream))
    try:
        raise ValueError(f"patient {NHS} not found at /Patient?name=Smith")
    except ValueError:
        logger.exception("lookup failed")
    record = json.loads(stream.getvalue())
    assert "ValueError" in record["exc"]
    assert NHS not in stream.getvalue() and "Smith" not in stream.getvalue()
    text = emit(logger, "text", "dashes %s", "999-000-1234")
    assert "999-000-1234" not in text and "[nhs-number]" in text and not text.startswith("{")


def test_redaction_leaves_other_numbers_and_ids_alone() -> None:
    assert redact("attempt 3 of 10, 12345678901 rows") == "attempt 3 of 10, 12345678901 rows"
    ident = "0f8c2a1e-9d3b-4c1a-8e7f-123456789012"
    assert redact(f"referral {ident}") == f"referral {ident}"
    assert redact("what? yes") == "what? yes"


def test_configure_replaces_its_own_handler_only() -> None:
    root = logging.getLogger()
    # Another test's main() may have left ours installed: it is replaced, others stay.
    before = [h for h in root.handlers if not getattr(h, "_healthy_homes_handler", False)]
    level = root.level
    try:
        first = configure_logging(logging.INFO, "json")
        second = configure_logging(logging.INFO, "text")
        assert first not in root.handlers and second in root.handlers
        assert [h for h in root.handlers if h is not second] == before
    finally:
        root.removeHandler(second)
        root.setLevel(level)


def test_cli_log_format_json_writes_json_lines(tmp_path: Path) -> None:
    # A real process: the entry point configures logging exactly as in production.
    env = {
        **os.environ,
        "HEALTHY_HOMES__STORAGE__URL": f"sqlite:///{tmp_path / 'hh.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "healthy_homes", "--log-format", "json", "-v", "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "expected INFO lines from the migration run"
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record)
    assert any(json.loads(line)["logger"].startswith("alembic") for line in lines)


def test_server_errors_reach_our_handler_redacted() -> None:
    # A server error logs its traceback through uvicorn; it must pass our filter too.
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        raise RuntimeError(f"lookup of {NHS} failed at /Patient?family=Smith")

    stream = io.StringIO()
    root = logging.getLogger()
    handler = make_handler("json", stream)
    root.addHandler(handler)
    server = ServerThread(app)
    try:
        url = server.start()
        assert httpx.get(f"{url}/Patient?family=Smith").status_code == 500
    finally:
        server.stop()
        root.removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    errors = [r for r in records if r["logger"].startswith("uvicorn")]
    assert errors and "RuntimeError" in errors[0]["exc"]
    assert NHS not in stream.getvalue() and "Smith" not in stream.getvalue()
