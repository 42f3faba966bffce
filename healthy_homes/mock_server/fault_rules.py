"""Fault rules: what to break, where, and how often; parsed from the CLI, a file or JSON.

A rule in the compact CLI form is ``SELECTOR:FAULT[,OPTION...]``, for example
``Condition:status=503,rate=0.2``. See :data:`FAULT_SYNTAX` (shown by
``healthy-homes mock-server --help``) and ``docs/mock-server.md``.
"""

from __future__ import annotations

import json
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from healthy_homes.errors import ConfigError

FaultKind = Literal["latency", "status", "reset", "truncate", "malformed", "duplicate"]
FHIR_PREFIX = "/fhir"
# Admin endpoints are never faulted, so faults can always be switched off again.
ADMIN_PREFIX = "/admin"

FAULT_SYNTAX = """\
fault rules (--fault, repeatable): SELECTOR:FAULT[,OPTION...]
  SELECTOR  *            every request under /fhir
            Condition    /fhir/Condition and everything below it (any resource type)
            /fhir/...    a glob on the request path, e.g. '/fhir/Group/*/$export'
  FAULT     latency=MS       add MS milliseconds before the request is handled
            status=CODE      answer CODE (429, 500, 503, ...) with an OperationOutcome
            reset            close the connection with a TCP reset, no response
            truncate         cut the JSON response body in half
            malformed        send the JSON response body with a trailing comma
            duplicate[=N]    a next page repeats the last N (1) entries of the page before
  OPTION    rate=P           fraction of matching requests faulted, 0..1 (default 1)
            method=GET|POST  only these HTTP methods
            retry-after=S    Retry-After seconds on a status fault (429 defaults to 1)
            after            (reset only) handle the request first, then reset
            seed=N           this rule's own random seed
  e.g. --fault 'Condition:status=503,rate=0.2' --fault '*:latency=150'
       --fault '/fhir:reset,after,method=POST,rate=0.1'  (transaction applied, answer lost)
  Each rule draws from its own random.Random, seeded from --fault-seed and the rule's
  position (or its seed=N), once per matching request: the same seed and the same
  request sequence give the same faults. /admin is never faulted."""


class FaultRule(BaseModel):
    """One fault rule; the JSON/TOML form of ``SELECTOR:FAULT[,OPTION...]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = "*"
    kind: FaultKind
    rate: float = Field(1.0, ge=0.0, le=1.0)
    method: tuple[str, ...] = ()
    latency_ms: int = Field(0, ge=0, le=600_000)
    status: int = Field(503, ge=400, le=599)
    retry_after: int | None = Field(None, ge=0)
    duplicate: int = Field(1, ge=1, le=100)
    after: bool = False
    seed: int | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split("|")
        return tuple(str(m).strip().upper() for m in value) if value else ()

    def applies_to(self, method: str, path: str) -> bool:
        """Whether a request falls under this rule."""
        if path.startswith(ADMIN_PREFIX):
            return False
        if self.method and method.upper() not in self.method:
            return False
        if self.match == "*":
            return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")
        if self.match.startswith("/"):
            # '/fhir' is the base whether the client posts to '/fhir' or '/fhir/'.
            return fnmatchcase(path, self.match) or fnmatchcase(path.rstrip("/"), self.match)
        base = f"{FHIR_PREFIX}/{self.match}"
        return path == base or path.startswith(base + "/")

    def header_retry_after(self) -> int | None:
        """The Retry-After seconds a status fault sends, if any."""
        if self.retry_after is None and self.status == 429:
            return 1
        return self.retry_after


class FaultConfig(BaseModel):
    """Every fault rule of a server and the seed their random generators derive from."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    rules: list[FaultRule] = Field(default_factory=list)

    @field_validator("rules", mode="before")
    @classmethod
    def _compact(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [parse_rule(v) if isinstance(v, str) else v for v in value]
        return value


_KINDS = {"latency", "status", "reset", "truncate", "malformed", "duplicate"}
_OPTIONS = {"rate", "method", "retry_after", "seed", "after"}
_FLAGS = {"reset", "truncate", "malformed", "duplicate", "after"}


def parse_rule(text: str) -> FaultRule:
    """Parse ``SELECTOR:FAULT[,OPTION...]``; raise ValueError saying what is wrong."""
    selector, sep, options = text.partition(":")
    if not sep or not options.strip():
        raise ValueError(f"fault rule {text!r}: expected SELECTOR:FAULT[,OPTION...]")
    fields: dict[str, Any] = {"match": selector.strip() or "*"}
    kinds = []
    for part in options.split(","):
        key, has_value, value = (s.strip() for s in part.partition("="))
        key = key.lower().replace("-", "_")
        if not key:
            continue
        if key not in _KINDS | _OPTIONS:
            raise ValueError(f"fault rule {text!r}: unknown option {key!r}")
        if not has_value and key not in _FLAGS:
            raise ValueError(f"fault rule {text!r}: {key} needs a value ({key}=...)")
        if key in _KINDS:
            kinds.append(key)
        if key == "latency":
            fields["latency_ms"] = value
        elif key == "status":
            fields["status"] = value
        elif key == "duplicate":
            fields["duplicate"] = value or 1
        elif key == "after":
            fields["after"] = True
        elif key in _OPTIONS:
            fields[key] = value
    if len(kinds) != 1:
        raise ValueError(
            f"fault rule {text!r}: name exactly one fault ({', '.join(sorted(_KINDS))})"
        )
    fields["kind"] = kinds[0]
    if fields.get("after") and kinds[0] != "reset":
        raise ValueError(f"fault rule {text!r}: 'after' only goes with reset")
    try:
        return FaultRule.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"fault rule {text!r}: {problems}") from None


def load_config(path: Path) -> FaultConfig:
    """Read a fault config file: TOML when it ends in ``.toml``, JSON otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return FaultConfig.model_validate(data)
    except (OSError, ValueError) as exc:  # ValidationError and decode errors are ValueErrors
        raise ConfigError(f"fault config {path}: {exc}") from None


def config_from_cli(rules: list[str], file: Path | None, seed: int | None) -> FaultConfig:
    """The config from ``--faults FILE``, then each ``--fault``, with ``--fault-seed``."""
    config = load_config(file) if file is not None else FaultConfig()
    try:
        extra = [parse_rule(r) for r in rules]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return FaultConfig(seed=config.seed if seed is None else seed, rules=[*config.rules, *extra])
