"""``healthy-homes mock-server``: serve a synthetic practice (or a housing inbox)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from healthy_homes.mock_server import cli_options

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``mock-server`` sub-command."""
    parser = subparsers.add_parser(
        "mock-server",
        help="run a mock FHIR server holding a synthetic GP practice",
        description=(
            "Serve a FHIR R4 endpoint with a synthetic UK GP practice (999-range NHS "
            "numbers, no real patient data), so the connector can be tried without live "
            "records. Runs until Ctrl-C."
        ),
    )
    parser.add_argument(
        "--patients", type=int, default=10_000, help="practice size (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--ods-code", default="A12345", help="the practice's ODS code")
    parser.add_argument(
        "--mode",
        choices=("practice", "housing"),
        default="practice",
        help="practice: a seeded GP system; housing: an empty referral inbox",
    )
    parser.add_argument(
        "--register-client",
        action="append",
        default=[],
        metavar="ID=JWKS_FILE",
        help="require SMART Backend Services tokens; register a client's public JWKS (repeat)",
    )
    parser.add_argument(
        "--token-lifetime", type=int, default=300, help="access token lifetime in s (default 300)"
    )
    cli_options.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Load, serve and print the URLs; return 0 on Ctrl-C (or when ``stop`` is set)."""
    # Imported here: the server is a FastAPI app, and every command's parser is built
    # from this module.
    from healthy_homes.mock_server.auth import mock_auth_from_files
    from healthy_homes.mock_server.server import build_server

    if args.patients < 0:
        print("mock-server: --patients must be >= 0")
        return 2
    started = time.perf_counter()
    patients = args.patients if args.mode == "practice" else 0
    try:
        auth = (
            mock_auth_from_files(args.register_client, token_lifetime=args.token_lifetime)
            if args.register_client
            else None
        )
    except (OSError, ValueError) as exc:
        print(f"mock-server: --register-client: {exc}")
        return 2
    server = build_server(
        patients=patients,
        seed=args.seed,
        mode=args.mode,
        host=args.host,
        port=args.port,
        ods_code=args.ods_code,
        auth=auth,
    )
    notes = cli_options.configure(server, args)  # faults, --load, timeline, export
    loaded = time.perf_counter() - started
    try:
        server.start()
    except OSError as exc:
        print(f"mock-server: cannot listen on {args.host}:{args.port}: {exc.strerror}")
        return 2
    count = server.store.count()
    print(f"Mock FHIR server ({args.mode}): {count} resources loaded in {loaded:.1f} s")
    print(f"  FHIR base:          {server.base_url}")
    print(f"  CapabilityStatement {server.base_url}/metadata")
    if auth is not None:
        print(f"  Token endpoint:     {server.url}/auth/token (bearer tokens required)")
    for line in (*cli_options.endpoints(server, args.mode), *notes):
        print(line)
    print("Press Ctrl-C to stop.", flush=True)
    waiter = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        # A service manager stops us with SIGTERM: finish requests, then exit 0.
        previous = signal.signal(signal.SIGTERM, lambda *_: waiter.set())
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
