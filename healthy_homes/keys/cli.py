"""``healthy-homes keys generate`` and ``keys jwks``: make a key pair, publish its JWKS."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from healthy_homes.fhir.keys import (
    ALGORITHMS,
    generate_private_key,
    load_private_key,
    public_jwks,
    write_private_key,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keys`` commands."""
    keys = subparsers.add_parser(
        "keys",
        help="make and show SMART Backend Services signing keys",
        description="Signing keys the connector uses to authenticate to a practice's system.",
    )
    commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)

    generate = commands.add_parser(
        "generate",
        help="write a new private key and print its public JWKS",
        description=(
            "Write a new private key (readable by you only) and print the public JWKS "
            "to register with the practice's system. The kid is the key's RFC 7638 thumbprint."
        ),
    )
    generate.add_argument("--out", required=True, type=Path, help="private key file (PEM)")
    generate.add_argument(
        "--alg", choices=ALGORITHMS, default="ES384", help="RS384 (RSA 3072) or ES384 (P-384)"
    )
    generate.add_argument("--kid", help="key id to publish (default: the key's thumbprint)")
    generate.add_argument("--jwks-out", type=Path, help="also write the public JWKS to this file")
    generate.add_argument("--force", action="store_true", help="replace an existing key file")
    generate.set_defaults(handler=_generate)

    show = commands.add_parser(
        "jwks",
        help="print the public JWKS of an existing private key",
        description="Print the public JWKS of a private key file, to register it again.",
    )
    show.add_argument("key", type=Path, help="private key file (PEM)")
    show.add_argument("--kid", help="key id to publish (default: the key's thumbprint)")
    show.set_defaults(handler=_show)


def _generate(args: argparse.Namespace) -> int:
    key = generate_private_key(args.alg)
    write_private_key(args.out, key, force=args.force)
    document = json.dumps(public_jwks(key, kid=args.kid), indent=2)
    if args.jwks_out is not None:
        args.jwks_out.write_text(document + "\n", encoding="utf-8")
    print(
        f"wrote {args.alg} private key to {args.out} (mode 0600); keep it secret.\n"
        "Register this public JWKS with the practice's system:",
        file=sys.stderr,
    )
    print(document)
    return 0


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(public_jwks(load_private_key(args.key), kid=args.kid), indent=2))
    return 0
