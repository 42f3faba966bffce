"""Each team's FHIR base (``/teams/{team}/fhir``) and its capacity (``/teams/{team}/capacity``).

Authenticated by the team's bearer token (issue 7 replaces it with something stronger);
a wrong token, or a team that does not exist, is 401 alike. Reads and searches only see
the team's own referrals: another team's id answers 404. The sender may cancel its
Task (consent withdrawn): the referral's patient data is then deleted here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from sqlmodel import select
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from healthy_homes.clock import Clock
from healthy_homes.fhir.systems import HH_REFERRAL_ID
from healthy_homes.housing import resources
from healthy_homes.housing.receive import Refused, receive
from healthy_homes.housing.teams import capacity_of, team_for_token
from healthy_homes.housing.workflow import WITHDRAWABLE, team_referral, withdraw_by_sender
from healthy_homes.store.db import Database
from healthy_homes.store.models import HousingReferral, HousingTeam

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
MAX_BODY = 1_000_000


def outcome(status: int, code: str, message: str, **headers: str) -> Response:
    """An OperationOutcome answer."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }
    return fhir(body, status, **headers)


def fhir(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    """A FHIR JSON answer."""
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


class _Api:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def team(self, request: Request) -> HousingTeam | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self.db.session() as session:
            return team_for_token(session, request.path_params["team"], token.strip())

    def _unauthorised(self) -> Response:
        return outcome(
            401,
            "login",
            "a valid bearer token for this team is needed",
            **{"WWW-Authenticate": 'Bearer realm="housing-inbox"'},
        )

    async def transaction(self, request: Request) -> Response:
        team = self.team(request)
        if team is None:
            return self._unauthorised()
        body = await request.body()
        if len(body) > MAX_BODY:
            return outcome(413, "too-costly", "the Bundle is too large")
        try:
            bundle = json.loads(body)
            if not isinstance(bundle, dict):
                raise ValueError
            done = receive(self.db, team.id, bundle, self.clock.now())
        except ValueError:
            return outcome(400, "invalid", "the body is not a JSON Bundle")
        except Refused as exc:
            log.info("referral refused for team %s: %s", team.id, exc.code)
            return outcome(exc.status, exc.code, exc.message)
        except (KeyError, TypeError, AttributeError):
            return outcome(400, "invalid", "the Bundle is not a referral transaction")
        if done.created:
            log.info("referral %s received by team %s", done.referral.id, team.id)
        return fhir(done.response, 200)

    def _row(self, request: Request, team: HousingTeam) -> HousingReferral | None:
        kind, ident = request.path_params["kind"], request.path_params["id"]
        base = ident.removesuffix("-p") if kind == "Patient" else ident
        with self.db.session() as session:
            row = team_referral(session, team.id, base)
        if row is None or resources.entry_ids(row).get(kind) != ident:
            return None
        return row

    async def read(self, request: Request) -> Response:
        team = self.team(request)
        if team is None:
            return self._unauthorised()
        kind = request.path_params["kind"]
        reader = resources.READERS.get(kind)
        if reader is None:
            return outcome(404, "not-supported", f"{kind} is not served here")
        row = self._row(request, team)
        if row is None:
            return outcome(404, "not-found", f"{kind}/{request.path_params['id']} is not known")
        body = reader(row)
        return fhir(body, 200, ETag=f'W/"{body["meta"]["versionId"]}"')

    async def search(self, request: Request) -> Response:
        team = self.team(request)
        if team is None:
            return self._unauthorised()
        kind = request.path_params["kind"]
        reader = resources.READERS.get(kind)
        if reader is None:
            return outcome(404, "not-supported", f"{kind} is not served here")
        system, _, value = request.query_params.get("identifier", "").rpartition("|")
        wanted_id = request.query_params.get("_id")
        found: list[HousingReferral] = []
        with self.db.session() as session:
            if value and system in ("", HH_REFERRAL_ID) and kind != "Patient":
                query = select(HousingReferral).where(
                    HousingReferral.team_id == team.id,
                    HousingReferral.referral_identifier == value,
                )
                found = list(session.exec(query).all())
            elif wanted_id:
                row = team_referral(session, team.id, wanted_id)
                found = [row] if row is not None else []
        root = f"{str(request.base_url).rstrip('/')}/teams/{team.id}/fhir"
        entries = [
            {
                "fullUrl": f"{root}/{kind}/{r.id}",
                "resource": reader(r),
                "search": {"mode": "match"},
            }
            for r in found
        ]
        return fhir(
            {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
        )

    async def update(self, request: Request) -> Response:
        """PUT Task or ServiceRequest: the sender cancelling (consent withdrawn)."""
        team = self.team(request)
        if team is None:
            return self._unauthorised()
        kind = request.path_params["kind"]
        if kind not in ("Task", "ServiceRequest"):
            return outcome(405, "not-supported", f"{kind} cannot be updated here")
        try:
            body = json.loads(await request.body())
            wanted = str(body["status"])
        except (ValueError, KeyError, TypeError):
            return outcome(400, "invalid", f"expected a {kind}")
        now = self.clock.now()
        with self.db.session() as session:
            row = team_referral(session, team.id, request.path_params["id"])
            if row is None:
                return outcome(404, "not-found", f"{kind}/{request.path_params['id']} is not known")
            match = request.headers.get("if-match")
            current = resources.READERS[kind](row)
            if match and match != f'W/"{current["meta"]["versionId"]}"':
                return outcome(412, "conflict", "the resource has changed; read it again")
            cancelling = (kind == "Task" and wanted == "cancelled") or (
                kind == "ServiceRequest" and wanted == "revoked"
            )
            if not cancelling or row.status not in (*WITHDRAWABLE, "cancelled"):
                if wanted != current["status"]:
                    return outcome(409, "business-rule", "the sender may only cancel a referral")
                return fhir(current, 200)
            if withdraw_by_sender(row, now):  # the same as a withdrawal by email
                session.add(row)
            answer = resources.READERS[kind](row)
        return fhir(answer, 200, ETag=f'W/"{answer["meta"]["versionId"]}"')

    async def capacity(self, request: Request) -> Response:
        team = self.team(request)
        if team is None:
            return self._unauthorised()
        with self.db.session() as session:
            value = capacity_of(session, team, self.clock.now())
        return JSONResponse(value.as_json())

    async def metadata(self, request: Request) -> Response:
        return fhir(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "rest": [
                    {
                        "mode": "server",
                        "interaction": [{"code": "transaction"}],
                        "resource": [
                            {
                                "type": "Task",
                                "interaction": [
                                    {"code": "read"},
                                    {"code": "search-type"},
                                    {"code": "update"},
                                ],
                            },
                            {
                                "type": "ServiceRequest",
                                "interaction": [
                                    {"code": "read"},
                                    {"code": "search-type"},
                                    {"code": "update"},
                                ],
                            },
                            {"type": "Patient", "interaction": [{"code": "read"}]},
                        ],
                    }
                ],
            }
        )


def create_fhir_api(db: Database, clock: Clock) -> FastAPI:
    """The teams' FHIR bases and capacity endpoints (no cookies, so no CSRF: bearer tokens)."""
    api = _Api(db, clock)
    base = "/teams/{team}/fhir"
    routes: list[BaseRoute] = [
        Route(base, api.transaction, methods=["POST"]),
        Route(base + "/", api.transaction, methods=["POST"]),
        Route(base + "/metadata", api.metadata, methods=["GET"]),
        Route(base + "/{kind}", api.search, methods=["GET"]),
        Route(base + "/{kind}/{id}", api.read, methods=["GET"]),
        Route(base + "/{kind}/{id}", api.update, methods=["PUT"]),
        Route("/teams/{team}/capacity", api.capacity, methods=["GET"]),
    ]
    return FastAPI(routes=routes, docs_url=None, redoc_url=None, openapi_url=None)
