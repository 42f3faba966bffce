"""Code set files: data, not code, because QOF clusters change every year."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from healthy_homes.config.loader import describe_validation_error
from healthy_homes.errors import CodeSetError

BUILT_IN = ("copd", "asthma", "falls", "high_risk")


class Code(BaseModel):
    """One concept."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[0-9]{6,18}$")
    display: str


class CodeSet(BaseModel):
    """A versioned set of SNOMED CT concepts that defines a register, naming its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    title: str
    version: str
    source: str = Field(min_length=10)
    system: str = "http://snomed.info/sct"
    codes: list[Code] = Field(min_length=1)
    resolved_codes: list[Code] = Field(default_factory=list)
    min_age: int | None = None
    max_age: int | None = None

    def code_values(self) -> frozenset[str]:
        """The concept ids that put a patient on the register."""
        return frozenset(c.code for c in self.codes)

    def token_query(self) -> str:
        """The codes as a FHIR token search value (comma means OR)."""
        return ",".join(f"{self.system}|{c.code}" for c in self.codes)


def load_codeset(name_or_path: str) -> CodeSet:
    """Load a built-in code set by name, or a code set JSON file by path."""
    if name_or_path in BUILT_IN:
        text = resources.files(__name__).joinpath(f"{name_or_path}.json").read_text("utf-8")
        origin = f"built-in code set '{name_or_path}'"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise CodeSetError(
                f"code set '{name_or_path}' not found; expected one of {', '.join(BUILT_IN)} "
                "or the path of a code set JSON file"
            )
        text = path.read_text("utf-8")
        origin = str(path)
    try:
        return CodeSet.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise CodeSetError(f"{origin} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise CodeSetError(describe_validation_error(exc, origin)) from None
