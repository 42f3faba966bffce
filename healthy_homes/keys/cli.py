"""``healthy-homes keys``: SMART signing keys (``generate``, ``jwks``) and the keys that
encrypt patient data at rest (``create-keyring``, ``rotate``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from healthy_homes.config.loader import resolve_settings
from healthy_homes.errors import ConfigError
from healthy_homes.fhir.keys import (
    ALGORITHMS,
    generate_private_key,
    load_private_key,
    public_jwks,
    write_private_key,
)

# The encryption keys and the store are imported by their handlers: every command's
# parser is built from this module, and rotation brings the audit log and the database.


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keys`` commands."""
    keys = subparsers.add_parser(
        "keys",
        help="signing keys (SMART Backend Services) and encryption keys (data at rest)",
        description="Signing keys the connector uses to authenticate to a practice's system, "
        "and the keys that encrypt patient data in its database.",
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

    create = commands.add_parser(
        "create-keyring",
        help="write a new key file for encryption at rest",
        description=(
            "Write a new key file (mode 0600) with one AES-256-GCM data key and one HMAC "
            "key. Point [security] key_file at it before the first 'db upgrade'."
        ),
    )
    create.add_argument("--out", required=True, type=Path, help="key file to write (JSON)")
    create.set_defaults(handler=_create_keyring)

    rotate = commands.add_parser(
        "rotate",
        help="new encryption keys; re-encrypt the database; drop the old data key",
        description=(
            "Add a new active data key and a new HMAC key to the [security] key_file, "
            "re-encrypt every encrypted column and recompute every keyed hash in batches, "
            "then remove the old data key. Stop every process using the database first. "
            "An interrupted run is finished by running it again."
        ),
    )
    rotate.add_argument("--config", type=Path, help="configuration file (TOML)")
    rotate.add_argument(
        "--keep-hmac-key",
        action="store_true",
        help="rotate the data key only (keyed hashes, e.g. audit pseudonyms, stay the same)",
    )
    rotate.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    rotate.set_defaults(handler=_rotate)


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


def _create_keyring(args: argparse.Namespace) -> int:
    from healthy_homes.crypto import KeyRing, write_key_file

    ring = KeyRing.generate()
    write_key_file(args.out, ring)
    print(
        f"wrote key file {args.out} (mode 0600, data key {ring.active_key_id}); back it up "
        "somewhere safe: without it the database cannot be read.\n"
        f'Configure it with:\n\n[security]\nkey_file = "{args.out}"'
    )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from healthy_homes.keys.rotation import rotate
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    if settings.security.key_file is None:
        raise ConfigError(
            "keys rotate needs [security] key_file: keys given inline (environment) "
            "cannot be rewritten; create a key file with 'healthy-homes keys create-keyring'"
        )
    db = Database(settings.storage.url)
    try:
        result = rotate(
            db,
            Path(settings.security.key_file),
            new_hmac=not args.keep_hmac_key,
            batch_size=args.batch_size,
        )
    finally:
        db.dispose()
    verb = "finished the interrupted rotation" if result.resumed else "rotated"
    print(f"{verb}: active data key {result.new_key_id}; dropped {', '.join(result.old_key_ids)}")
    for name, count in sorted(result.reencrypted.items()):
        print(f"  {name}: {count} re-encrypted")
    for name, count in sorted(result.rehashed.items()):
        print(f"  {name}: {count} recomputed")
    return 0
