"""Register code sets ship as data naming their source and version."""

import json
from pathlib import Path

import pytest

from healthy_homes.errors import CodeSetError
from healthy_homes.registers import load_codeset
from healthy_homes.registers.codesets import BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_codesets_name_source_and_version(name: str) -> None:
    codeset = load_codeset(name)
    assert codeset.name == name
    assert codeset.version and len(codeset.source) > 20
    assert codeset.system == "http://snomed.info/sct"


def test_descendant_concepts_are_included() -> None:
    assert {"185086009", "87433001"} <= load_codeset("copd").code_values()
    assert "233678006" in load_codeset("asthma").code_values()


def test_token_query_uses_system_and_comma_or() -> None:
    query = load_codeset("falls").token_query()
    assert query.startswith("http://snomed.info/sct|")
    assert query.count(",") == len(load_codeset("falls").codes) - 1


def test_custom_codeset_file(tmp_path: Path) -> None:
    path = tmp_path / "housebound.json"
    path.write_text(
        json.dumps(
            {
                "name": "housebound",
                "title": "Housebound",
                "version": "1",
                "source": "Practice's own list, agreed 2026",
                "codes": [{"code": "160689007", "display": "Housebound"}],
            }
        )
    )
    assert load_codeset(str(path)).code_values() == {"160689007"}


def test_bad_codeset_file_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {"name": "x", "title": "x", "version": "1", "source": "somewhere else", "codes": []}
        )
    )
    with pytest.raises(CodeSetError, match="codes"):
        load_codeset(str(path))
    with pytest.raises(CodeSetError, match="expected one of copd"):
        load_codeset("no-such-codeset")
