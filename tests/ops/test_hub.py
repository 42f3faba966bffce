"""Acceptance (issue 8): in hub mode, one practice whose endpoint is down does not delay the
others' syncs.

One deployment, 100 practices, each with its own configuration (ODS code, endpoint,
credentials, time limit): 97 small synthetic practices spread over three mock FHIR
servers on loopback, one whose endpoint accepts connections and never finishes an
answer (a time limit of its own), one whose endpoint refuses connections, and one whose
credentials are broken (its key file is missing). The proof is in the order of the
service's events, not in wall-clock thresholds: the hung practice starts first and
is still running (within its own time limit) when every other practice has finished;
only then does the test take the hung endpoint away, and that practice alone fails.
(A run stopped by its own time limit is tests/connector/test_scheduling.py.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import col, func, select

from healthy_homes.clock import FixedClock
from healthy_homes.connector.service import ConnectorService
from healthy_homes.fhir.retry import RetryPolicy
from healthy_homes.store.db import Database
from healthy_homes.store.models import RegisterMembership
from tests.connector.helpers import NOW, no_sleep, practice, practice_server, settings
from tests.ops.conftest import HangingEndpoint, refused_url

HEALTHY = 97
HUNG, REFUSED, BROKEN = "H00000", "R00000", "K00000"
HUNG_LIMIT = 900.0
#: A few quick tries, so the refused practice fails soon rather than backing off for long.
POLICY = RetryPolicy(max_attempts=2)


def test_a_hundred_practices_one_hung_one_refused_one_broken(
    tmp_path: Path, stuck_endpoint: HangingEndpoint
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    db.upgrade()
    servers = [practice_server(patients=30, seed=seed) for seed in (11, 12, 13)]
    try:
        healthy = [f"P{n:05d}" for n in range(HEALTHY)]
        config = settings(
            db,
            practice(stuck_endpoint.url, ods=HUNG, timeout_seconds=HUNG_LIMIT),
            *(practice(servers[n % 3], ods=ods) for n, ods in enumerate(healthy)),
            practice(refused_url(), ods=REFUSED),
            practice(
                servers[0],
                ods=BROKEN,
                auth={
                    "kind": "smart",
                    "client_id": "hub",
                    "token_url": "https://auth.example/token",
                    "private_key_file": str(tmp_path / "missing-key.pem"),
                },
            ),
            max_concurrent_practices=8,
        )
        assert len(config.practices) == 100

        others = {("end", ods, "auto") for ods in [*healthy, REFUSED]}

        async def run_all() -> tuple[ConnectorService, dict[str, object]]:
            async with ConnectorService(
                config, db, FixedClock(NOW), sleep=no_sleep, policy=POLICY
            ) as service:
                everyone = asyncio.create_task(service.run_all("auto"))
                while not others <= set(service.events):
                    assert not everyone.done()
                    await asyncio.sleep(0.05)
                # Everyone else is done; the hung practice is still inside its time limit.
                assert ("end", HUNG, "auto") not in service.events
                stuck_endpoint.close()
                report = await everyone
                return service, {run.practice: run for run in report.practices}

        service, runs = asyncio.run(run_all())
    finally:
        for server in servers:
            server.stop()

    events = list(service.events)
    ends = [who for event, who, _ in events if event == "end"]
    first_end = next(n for n, event in enumerate(events) if event[0] == "end")
    assert events.index(("start", HUNG, "auto")) < first_end  # it held a slot from the outset
    assert ends[-1] == HUNG  # and finished last, once its endpoint went away
    assert set(ends[:-1]) == set(healthy) | {REFUSED}  # everyone else, all before it
    assert getattr(runs[HUNG], "error")
    assert getattr(runs[REFUSED], "error")
    assert "key" in str(getattr(runs[BROKEN], "error")).lower()
    for ods in healthy:
        assert getattr(runs[ods], "error") is None, (ods, getattr(runs[ods], "error"))
    # Each healthy practice's registers were stored under its own ODS code: practices that
    # read the same server hold the same number of members, each under their own code.
    with db.session() as session:
        per_practice = dict(
            session.exec(
                select(RegisterMembership.practice_ods, func.count())
                .where(col(RegisterMembership.practice_ods).in_(healthy))
                .group_by(RegisterMembership.practice_ods)
            ).all()
        )
    for server in range(3):
        counts = {per_practice.get(ods, 0) for ods in healthy[server::3]}
        assert len(counts) == 1, (server, counts)
    assert sum(per_practice.values()) > 0
    db.dispose()
