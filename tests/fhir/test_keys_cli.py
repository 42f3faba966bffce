"""``healthy-homes keys generate``: a private key on disk, its public JWKS on stdout."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import jwt
import pytest

from healthy_homes.errors import ConfigError
from healthy_homes.fhir.keys import jwk_thumbprint, load_private_key
from healthy_homes.keys import cli as keys_cli


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="healthy-homes")
    keys_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_generate_writes_key_and_prints_jwks_that_verifies_its_signatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], alg: str
) -> None:
    key_file = tmp_path / "connector.pem"
    assert run("keys", "generate", "--alg", alg, "--out", str(key_file)) == 0

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    jwks = json.loads(out)
    [jwk] = jwks["keys"]
    assert jwk["alg"] == alg
    assert jwk["kid"] == jwk_thumbprint(jwk)
    assert not {"d", "p", "q"} & set(jwk)  # public half only
    assert "PRIVATE" not in out

    private = load_private_key(key_file)
    token = jwt.encode({"iss": "hh"}, private, algorithm=alg, headers={"kid": jwk["kid"]})
    public = jwt.PyJWK(jwk).key
    assert jwt.decode(token, public, algorithms=[alg]) == {"iss": "hh"}


def test_generate_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "connector.pem"
    run("keys", "generate", "--out", str(key_file))
    first = key_file.read_bytes()
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        run("keys", "generate", "--out", str(key_file))
    assert key_file.read_bytes() == first

    key_file.chmod(0o644)
    assert run("keys", "generate", "--out", str(key_file), "--force") == 0
    assert key_file.read_bytes() != first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_jwks_of_an_existing_key_matches_what_generate_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "connector.pem"
    jwks_file = tmp_path / "connector.jwks.json"
    run("keys", "generate", "--out", str(key_file), "--jwks-out", str(jwks_file))
    printed = json.loads(capsys.readouterr().out)
    run("keys", "jwks", str(key_file))
    assert json.loads(capsys.readouterr().out) == printed == json.loads(jwks_file.read_text())


def test_thumbprint_matches_rfc7638_example() -> None:
    # The worked example of RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
            "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
            "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08"
            "qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
            "wapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_loading_a_missing_or_foreign_key_names_the_file_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read private key file"):
        load_private_key(tmp_path / "nope.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key at all")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key") as caught:
        load_private_key(junk)
    assert "not a key at all" not in str(caught.value)
