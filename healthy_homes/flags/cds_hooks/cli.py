"""``healthy-homes cds-hooks``: serve the CDS Hooks service, or print its discovery document."""

from __future__ import annotations

import argparse

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings


def _serve(args: argparse.Namespace) -> int:
    # Imported here: every command's parser is built from this module, and only this
    # command needs the web server and the service behind it.
    import uvicorn

    from healthy_homes.flags.cds_hooks.app import create_app
    from healthy_homes.flags.cds_hooks.service import CdsHooksService
    from healthy_homes.store.db import Database

    settings = resolve_settings(args.config)
    db = Database.from_settings(settings)
    db.upgrade()
    config = settings.cds_hooks
    app = create_app(CdsHooksService(settings, db, SystemClock()))
    host, port = args.host or config.host, args.port if args.port is not None else config.port
    print(f"CDS Hooks discovery at http://{host}:{port}/cds-services")
    print(f"EHR tokens must name e.g. {config.service_url('healthy-homes-patient-view')} as aud")
    # No access log: it would be the only place request details could leak to.
    # No uvicorn logging config: its records reach our redacting handler (logs.py).
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", log_config=None)
    db.dispose()
    return 0


def _discovery(args: argparse.Namespace) -> int:
    from healthy_homes.flags.cds_hooks.service import discovery_document

    print(discovery_document().model_dump_json(exclude_none=True, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cds-hooks`` commands."""
    cds = subparsers.add_parser(
        "cds-hooks",
        help="CDS Hooks 2.0 service: cards in the EHR for flagged patients",
        description=(
            "Serve CDS Hooks 2.0 (patient-view, appointment-book, encounter-start) so the "
            "practice's clinical system shows a card when a flagged patient comes in, and "
            "records what the clinician chose. Callers authenticate with a signed JWT "
            "(RS384 or ES384) from an issuer listed under [cds_hooks] in the configuration."
        ),
    )
    commands = cds.add_subparsers(dest="cds_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the service (runs pending database migrations first)",
        description="Run the CDS Hooks service until interrupted.",
    )
    add_config_argument(serve)
    serve.add_argument("--host", help="listen address (default: cds_hooks.host)")
    serve.add_argument("--port", type=int, help="listen port (default: cds_hooks.port)")
    serve.set_defaults(handler=_serve)
    discovery = commands.add_parser(
        "discovery",
        help="print the discovery document (GET /cds-services)",
        description="Print the services, hooks and prefetch templates EHRs will discover.",
    )
    discovery.set_defaults(handler=_discovery)
