"""The one piece of EHR data a card needs: the Patient, prefetched or fetched.

Our store already knows who is flagged, so we ask only for the Patient (to stay
silent for someone who has died or left the practice since the last sync): minimum
necessary. When the EHR did not prefetch it we read it from ``fhirServer`` with the
``fhirAuthorization`` token, if that server is on the issuer's allowlist; otherwise
the answer is 412, as https://cds-hooks.hl7.org/2.0/#prefetch-template says.
"""

from __future__ import annotations

import re

import httpx

from healthy_homes.errors import CdsHooksError, PrefetchError
from healthy_homes.flags.cds_hooks.jwt_auth import Caller
from healthy_homes.flags.cds_hooks.models import JSON, HookRequest

PREFETCH = {"patient": "Patient/{{context.patientId}}"}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _allowed(caller: Caller, server: str) -> bool:
    wanted = server.rstrip("/")
    return any(wanted == allowed.rstrip("/") for allowed in caller.issuer.fhir_servers)


async def patient_for(
    request: HookRequest, patient_id: str, caller: Caller, http: httpx.AsyncClient
) -> JSON:
    """The context patient's Patient resource: from prefetch, else from the EHR's server."""
    given = (request.prefetch or {}).get("patient")
    if isinstance(given, dict):
        if given.get("resourceType") != "Patient" or given.get("id") != patient_id:
            raise CdsHooksError("prefetch 'patient' is not the Patient in context")
        return given
    if request.fhirServer is None or request.fhirAuthorization is None:
        raise PrefetchError("the Patient was not prefetched and no FHIR access was given")
    server = str(request.fhirServer)
    if not FHIR_ID.match(patient_id):
        raise PrefetchError("context patientId is not a FHIR id; the Patient cannot be read")
    if not _allowed(caller, server):
        raise PrefetchError("the Patient was not prefetched and fhirServer is not allowed")
    token = request.fhirAuthorization.access_token
    try:
        response = await http.get(
            f"{server.rstrip('/')}/Patient/{patient_id}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        )
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise PrefetchError(
            f"the Patient could not be fetched from fhirServer ({type(exc).__name__})"
        ) from None
    if not isinstance(body, dict) or body.get("resourceType") != "Patient":
        raise PrefetchError(
            f"the Patient could not be fetched from fhirServer (HTTP {response.status_code})"
        )
    return body
