"""Serving the pop-up from the command line: for a configured practice, or a demo."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
from pathlib import Path

import httpx

from healthy_homes.accounts import SessionPolicy
from healthy_homes.config.loader import resolve_settings
from healthy_homes.config.models import Settings
from healthy_homes.errors import ConfigError
from healthy_homes.flags.popup import PopupConfig, close_streams, create_popup_app
from healthy_homes.serving import ServerThread
from healthy_homes.store.db import Database
from healthy_homes.web.cli import trusted_proxy_from, wait_forever


def _serve(
    args: argparse.Namespace,
    settings: Settings,
    db: Database,
    secret: bytes,
) -> ServerThread:
    ods = args.practice or (settings.practices[0].ods_code if settings.practices else None)
    if ods is None:
        raise ConfigError("no practice is configured")
    config = PopupConfig.from_settings(settings, ods, poll_seconds=args.poll_seconds)
    app = create_popup_app(
        config,
        db=db,
        csrf_secret=secret,
        assets_dir=Path(args.assets_dir) if args.assets_dir else None,
        secure_cookies=args.secure_cookies or settings.access.secure_cookies,
        session_policy=SessionPolicy.from_config(settings.access),
        trusted_proxy=trusted_proxy_from(args),
    )
    server = ServerThread(app, args.host, args.port)
    print(f"Pop-up page for practice {ods}: {server.start()}/")
    return server


def serve_practice(args: argparse.Namespace, secret: bytes) -> int:
    """Serve one configured practice's pop-up until Ctrl-C."""
    settings = resolve_settings(args.config)
    db = Database.from_settings(settings)
    db.upgrade()
    server = _serve(args, settings, db, secret)
    try:
        wait_forever()
    finally:
        close_streams(server.app)
        server.stop()
        db.dispose()
    return 0


def _arrive_next(practice_url: str, flagged: set[str], today: str) -> str | None:
    """Mark the next booked appointment today of a flagged patient as arrived."""
    params = {"status": "booked", "date": today, "_count": "500"}
    with httpx.Client(base_url=practice_url + "/", timeout=10) as http:
        found = http.get("Appointment", params=params).json()
        for entry in found.get("entry") or []:
            appointment = entry["resource"]
            actors = [p.get("actor", {}).get("reference", "") for p in appointment["participant"]]
            if not any(a.removeprefix("Patient/") in flagged for a in actors):
                continue
            arrived = {**appointment, "status": "arrived"}
            http.put(f"Appointment/{appointment['id']}", json=arrived).raise_for_status()
            return str(appointment["id"])
    return None


def _demo_clinician(db: Database, ods: str) -> tuple[str, str]:
    """A clinician account for the demo practice, with a fresh random password."""
    from healthy_homes.accounts.users import add_user
    from healthy_homes.clock import SystemClock
    from healthy_homes.web.access import Role

    username, password = "demo.clinician", secrets.token_urlsafe(12)
    with db.session() as session:
        add_user(
            session,
            username=username,
            display_name="Dr A Demo",
            role=Role.CLINICIAN,
            organisation=ods,
            password=password,
            now=SystemClock().now(),
        )
    return username, password


def serve_demo(args: argparse.Namespace, secret: bytes) -> int:
    """A synthetic practice, one connector run, the pop-up, and arrivals on Enter."""
    from healthy_homes.connector.run import run_once
    from healthy_homes.demo.scenario import Demo

    with (
        tempfile.TemporaryDirectory(prefix="healthy-homes-popup-") as tmp,
        Demo(Path(tmp)) as demo,
    ):
        assert demo.settings is not None
        report = asyncio.run(run_once(demo.settings, demo.db, demo.clock))
        flagged = {p for run in report.practices if run.flags for p in run.flags.raised}
        args.practice = None
        server = _serve(args, demo.settings, demo.db, secret)
        username, password = _demo_clinician(demo.db, demo.settings.practices[0].ods_code)
        print(f"Sign in as {username} with password {password}")
        print(f"Practice FHIR server: {demo.practice_url}; {len(flagged)} patients flagged.")
        try:
            while True:
                input("Press Enter to mark the next flagged patient as arrived (Ctrl-C stops) ")
                appointment = _arrive_next(demo.practice_url, flagged, demo.today.isoformat())
                print(f"Appointment {appointment} arrived" if appointment else "No more today")
        except (KeyboardInterrupt, EOFError):
            print("stopping")
        finally:
            close_streams(server.app)
            server.stop()
    return 0
