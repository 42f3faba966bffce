"""The CapabilityStatement, built from the same tables that drive the server."""

from __future__ import annotations

from typing import Any

from healthy_homes import __version__
from healthy_homes.mock_server.params import INCLUDES, SEARCH_PARAMS

JSON = dict[str, Any]

_INTERACTIONS = ("read", "vread", "update", "delete", "create", "search-type")
_DESCRIPTIONS = {
    "practice": "A synthetic UK GP practice (999-range NHS numbers; no real patient data).",
    "housing": "A housing service's FHIR endpoint that receives referrals.",
}


def _resource(type_: str) -> JSON:
    params = [
        {"name": "_id", "type": "token"},
        {"name": "_lastUpdated", "type": "date"},
    ]
    for param in SEARCH_PARAMS[type_].values():
        entry: JSON = {"name": param.name, "type": param.type}
        if param.documentation:
            entry["documentation"] = param.documentation
        params.append(entry)
    resource: JSON = {
        "type": type_,
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": params,
    }
    if INCLUDES[type_]:
        resource["searchInclude"] = list(INCLUDES[type_])
    return resource


def capability_statement(base_url: str, mode: str, date: str) -> JSON:
    """What this server does, truthfully, for ``GET /metadata``."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Healthy Homes",
        "kind": "instance",
        "software": {"name": "Healthy Homes mock FHIR server", "version": __version__},
        "implementation": {"description": _DESCRIPTIONS[mode], "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Search is strict: unknown or unsupported parameters answer 400 unless "
                    "the request says 'Prefer: handling=lenient'. Paging is stable: each "
                    "next link reads the snapshot taken at the first page, and every page's "
                    "Bundle.meta.lastUpdated is that snapshot's instant (use it as the next "
                    "_lastUpdated=gt watermark). _sort supports _lastUpdated and "
                    "-_lastUpdated; _summary supports count. No search cache."
                ),
                "resource": [_resource(t) for t in SEARCH_PARAMS],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
