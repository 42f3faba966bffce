"""``healthy-homes referrals``: the outbox by hand (list, show, retry, cancel, deliver, web)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
from typing import TYPE_CHECKING

from healthy_homes.clock import SystemClock
from healthy_homes.config.cli import add_config_argument
from healthy_homes.config.loader import resolve_settings
from healthy_homes.store.models import OutboxState

if TYPE_CHECKING:
    from healthy_homes.audit import Actor
    from healthy_homes.config.models import Settings
    from healthy_homes.connector.delivery.worker import DeliveryStats
    from healthy_homes.store.db import Database
    from healthy_homes.store.models import OutboxEntry, Referral

STATES = [s.value for s in OutboxState]

# The outbox, the worker and the database are imported by the handlers: every
# command's parser is built from this module.


def _db(settings: Settings) -> Database:
    from healthy_homes.store.db import Database

    db = Database.from_settings(settings)
    db.upgrade()
    return db


def _line(entry: OutboxEntry, referral: Referral | None) -> str:
    # Ids, states and times only: never the dataset.
    due = entry.next_attempt_at.isoformat(timespec="seconds")
    practice = referral.practice_ods if referral else "?"
    return (
        f"{entry.referral_id}  {entry.state:<9}  {practice:<8}  {entry.housing_service_id:<16}  "
        f"attempts {entry.attempts:<3}  next {due}"
    )


def _list(args: argparse.Namespace) -> int:
    from healthy_homes.connector.delivery import outbox

    db = _db(resolve_settings(args.config))
    try:
        rows = outbox.listing(db, state=args.state, limit=args.limit)
    finally:
        db.dispose()
    for entry, referral in rows:
        print(_line(entry, referral))
    if not rows:
        print("no referrals in the outbox" + (f" in state {args.state}" if args.state else ""))
    return 0


def _show(args: argparse.Namespace) -> int:
    from healthy_homes.connector.delivery import outbox
    from healthy_homes.store.models import Referral

    db = _db(resolve_settings(args.config))
    try:
        with db.session() as session:
            entry = outbox.entry_for(session, args.referral)
            referral = session.get(Referral, args.referral)
    finally:
        db.dispose()
    if entry is None:
        print(f"referral {args.referral}: not in the outbox")
        return 1
    print(_line(entry, referral))
    fields = {
        "referral status": referral.status if referral else None,
        "remote reference": referral.remote_task_url if referral else None,
        "remote status": referral.task_status if referral else None,
        "lease": f"{entry.lease_owner} until {entry.lease_expires_at}"
        if entry.lease_owner
        else None,
        "delivered at": entry.delivered_at,
        "times dead-lettered": entry.dead_count or None,
        "last error": entry.last_error,
    }
    for name, value in fields.items():
        if value is not None:
            print(f"  {name}: {value}")
    return 0


def _operator() -> Actor:
    """Who ran the command, for the audit log: the operating-system account."""
    from healthy_homes.audit import Actor

    return Actor(f"os:{getpass.getuser()}", "operator")


def _retry(args: argparse.Namespace) -> int:
    from healthy_homes.connector.delivery import outbox

    db = _db(resolve_settings(args.config))
    try:
        if args.all_dead:
            print(f"{outbox.retry_dead(db, SystemClock())} dead referral(s) queued again")
        else:
            for referral_id in args.referral:
                outbox.retry(db, referral_id, SystemClock(), by=_operator())
                print(f"{referral_id}: queued again")
    finally:
        db.dispose()
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from healthy_homes.connector.delivery import outbox

    db = _db(resolve_settings(args.config))
    try:
        for referral_id in args.referral:
            outbox.cancel(db, referral_id, SystemClock(), args.reason, by=_operator())
            print(f"{referral_id}: cancelled")
    finally:
        db.dispose()
    return 0


async def deliver(settings: Settings, db: Database, *, once: bool) -> DeliveryStats:
    """Run a worker: until nothing is due (``once``), else until SIGTERM or SIGINT."""
    from healthy_homes.connector.delivery.worker import DeliveryWorker

    worker = DeliveryWorker(db, settings.housing_services, settings.delivery, clock=SystemClock())
    try:
        if once:
            return await worker.run_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("delivering; Ctrl-C or SIGTERM stops", flush=True)
        return await worker.run(stop)
    finally:
        await worker.aclose()


def _deliver(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.config)
    db = _db(settings)
    try:
        stats = asyncio.run(deliver(settings, db, once=args.once))
    finally:
        db.dispose()
    print(
        f"delivered {stats.delivered}, retry later {stats.retried}, dead {stats.dead}, "
        f"cancelled {stats.cancelled}",
        flush=True,
    )
    return 1 if stats.dead else 0


def _web(args: argparse.Namespace) -> int:
    # Imported here: only this command needs the web stack.
    from healthy_homes.accounts import SessionPolicy
    from healthy_homes.connector.delivery.pages import create_outbox_app
    from healthy_homes.reporting.funnel import receipt_acknowledging
    from healthy_homes.serving import ServerThread
    from healthy_homes.web.cli import csrf_secret, trusted_proxy_from, wait_forever

    settings = resolve_settings(args.config)
    db = _db(settings)
    app = create_outbox_app(
        db,
        SystemClock(),
        csrf_secret=csrf_secret(),
        secure_cookies=args.secure_cookies or settings.access.secure_cookies,
        session_policy=SessionPolicy.from_config(settings.access),
        trusted_proxy=trusted_proxy_from(args),
        receipt_acknowledges=receipt_acknowledging(settings.housing_services),
    )
    server = ServerThread(app, args.host, args.port)
    print(f"Referral outbox page: {server.start()}/referrals/outbox", flush=True)
    try:
        wait_forever()
    finally:
        server.stop()
        db.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``referrals list|show|retry|cancel|deliver|web``."""
    parser = subparsers.add_parser(
        "referrals",
        help="the referral outbox: list, show, retry, cancel, deliver",
        description="Consented referrals wait in the outbox until the delivery worker "
        "sends them. Dead-lettered ones (out of attempts, or refused for good) wait for an "
        "operator to retry or cancel them. Output names referrals by id, never patients.",
    )
    commands = parser.add_subparsers(dest="referrals_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="outbox entries, newest first")
    add_config_argument(listing)
    listing.add_argument("--state", choices=STATES, help="only entries in this state")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one referral's delivery state and last error")
    add_config_argument(show)
    show.add_argument("referral", metavar="REFERRAL_ID")
    show.set_defaults(handler=_show)

    retry = commands.add_parser("retry", help="send dead-lettered referrals again now")
    add_config_argument(retry)
    retry.add_argument("referral", nargs="*", metavar="REFERRAL_ID")
    retry.add_argument("--all-dead", action="store_true", help="every dead-lettered referral")
    retry.set_defaults(handler=_retry)

    cancel = commands.add_parser("cancel", help="never send these referrals")
    add_config_argument(cancel)
    cancel.add_argument("referral", nargs="+", metavar="REFERRAL_ID")
    cancel.add_argument("--reason", required=True, help="why (recorded on the referral)")
    cancel.set_defaults(handler=_cancel)

    deliver = commands.add_parser(
        "deliver",
        help="run the delivery worker",
        description="Claim due outbox entries under a lease and deliver them over each "
        "housing service's transport. With --once: until nothing is due, then exit. "
        "Several workers may run against one PostgreSQL database.",
    )
    add_config_argument(deliver)
    deliver.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    deliver.set_defaults(handler=_deliver)

    web = commands.add_parser(
        "web",
        help="serve the operator's outbox page (retry or cancel dead letters)",
        description="A page listing dead-lettered (and other) referrals by id, with retry "
        "and cancel, for the practice's admins (sign in at /sign-in; add them with "
        "'healthy-homes users add --role practice-admin').",
    )
    add_config_argument(web)
    web.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    web.add_argument("--port", type=int, default=8090, help="port (8090; 0 picks a free one)")
    from healthy_homes.web.cli import add_sign_in_arguments

    add_sign_in_arguments(web)
    web.set_defaults(handler=_web)
