"""Structured logs with no patient identifiers: a JSON formatter and a redaction filter.

Bottom layer (standard library only). Every record handled by the CLI's handler passes
:class:`RedactionFilter` first, whatever the format: NHS-number-shaped values and URL
query strings (which carry search parameters such as ``identifier=`` or ``name=``) are
replaced before anything is written. Context that helps an operator (practice ODS code,
request id, referral id) is added with ``extra={...}`` or :func:`log_context`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

LogFormat = Literal["json", "text"]

#: Ten digits, optionally grouped 3-3-4 with spaces or dashes, not part of a longer number.
NHS_NUMBER_SHAPE = re.compile(r"(?<![\d-])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\d-])")
#: A query string after a path or URL: search parameters may name or identify a patient.
QUERY_STRING = re.compile(r"(?<=[\w/.\-])\?[^\s\"'#<>]+")
#: Record attributes copied into JSON output when present.
CONTEXT_FIELDS = ("practice", "request_id", "referral")

# A tuple of pairs, not a dict: ContextVar defaults must not be mutable.
_context: ContextVar[tuple[tuple[str, str], ...]] = ContextVar(
    "healthy_homes_log_context", default=()
)
_HANDLER_MARK = "_healthy_homes_handler"


def redact(text: str) -> str:
    """The text with NHS-number-shaped values and query strings removed."""
    text = QUERY_STRING.sub("?[redacted]", text)
    return NHS_NUMBER_SHAPE.sub("[nhs-number]", text)


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Attach fields (e.g. practice, request_id) to every record logged inside the block."""
    token = _context.set((*_context.get(), *fields.items()))
    try:
        yield
    finally:
        _context.reset(token)


class RedactionFilter(logging.Filter):
    """Rewrites a record's message and traceback so no identifier reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        for name, value in reversed(_context.get()):  # innermost wins
            if not hasattr(record, name):
                setattr(record, name, value)
        # Formatting here (not in the formatter) means arguments are redacted too.
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name in CONTEXT_FIELDS:
            field = getattr(record, name, None)
            if isinstance(field, str):
                setattr(record, name, redact(field))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and context fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record (already redacted by the filter)."""
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def make_handler(fmt: LogFormat = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler with the redaction filter and the chosen format."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(
    level: int = logging.WARNING, fmt: LogFormat = "text", stream: IO[str] | None = None
) -> logging.Handler:
    """Install our handler on the root logger, replacing one installed before."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = make_handler(fmt, stream)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
