"""Load external FHIR data: transaction, batch or collection Bundles, files or directories.

Bundles go through the server's own transaction processing (:mod:`bundles`), so
``urn:uuid`` fullUrls get server ids, references are rewritten, ``ifNoneExist``
de-duplicates and conditional references (``Organization?identifier=...``) resolve.
Entries of resource types this server does not hold (Synthea's Claim,
ExplanationOfBenefit, Provenance, ...) are skipped, and references to them keep only
their ``display``. Synthea writes shared Organizations, Locations and Practitioners
to ``hospitalInformation*.json`` and ``practitionerInformation*.json``; in a directory
those files load first, because patient bundles refer to them conditionally.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from healthy_homes.mock_server import jsonio
from healthy_homes.mock_server.bundles import process_bundle
from healthy_homes.mock_server.outcome import FhirHttpError
from healthy_homes.mock_server.params import SEARCH_PARAMS
from healthy_homes.mock_server.routes import base_url
from healthy_homes.mock_server.store import MockStore

JSON = dict[str, Any]
#: What references are resolved against when loading before the server listens.
DEFAULT_BASE = "http://localhost/fhir"
_FIRST = ("hospitalInformation", "practitionerInformation")
_KINDS = ("transaction", "batch", "collection", "searchset")


@dataclass
class LoadReport:
    """What a load did, by resource type; never any resource content."""

    created: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    bundles: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: LoadReport) -> None:
        """Fold another report into this one."""
        self.created.update(other.created)
        self.existing.update(other.existing)
        self.skipped.update(other.skipped)
        self.bundles += other.bundles
        self.failures.extend(other.failures)

    def as_json(self) -> JSON:
        """The report as a JSON object."""
        return {
            "bundles": self.bundles,
            "created": dict(sorted(self.created.items())),
            "existing": dict(sorted(self.existing.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "failures": [{"source": s, "problem": p} for s, p in self.failures],
        }

    def summary(self) -> str:
        """One line for the console."""
        made = sum(self.created.values())
        text = f"loaded {self.bundles} bundle(s): {made} resources created"
        if self.existing:
            text += f", {sum(self.existing.values())} already present"
        if self.skipped:
            text += ", skipped unsupported " + ", ".join(
                f"{t} x{n}" for t, n in sorted(self.skipped.items())
            )
        if self.failures:
            text += f"; {len(self.failures)} failed"
        return text


def _type_of(entry: JSON) -> str:
    resource = entry.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
        return str(resource["resourceType"])
    url = str((entry.get("request") or {}).get("url", ""))
    return url.split("?", 1)[0].split("/", 1)[0]


def _unlink(node: Any, dropped: dict[str, str]) -> None:
    """Turn references to skipped entries into display-only references."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in dropped:
            del node["reference"]
            node.setdefault("display", f"{dropped[ref]} (not held by this server)")
        for value in node.values():
            _unlink(value, dropped)
    elif isinstance(node, list):
        for item in node:
            _unlink(item, dropped)


def prepare(bundle: Any) -> tuple[JSON, Counter[str]]:
    """A transaction or batch Bundle the server can process, and the skipped types."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirHttpError(400, "not a FHIR Bundle")
    kind = bundle.get("type")
    if kind not in _KINDS:
        raise FhirHttpError(400, f"Bundle.type {kind!r}: expected one of {', '.join(_KINDS)}")
    skipped: Counter[str] = Counter()
    dropped: dict[str, str] = {}
    entries = []
    for raw in bundle.get("entry") or []:
        if not isinstance(raw, dict):
            raise FhirHttpError(400, "Bundle.entry items must be objects")
        type_ = _type_of(raw)
        if type_ not in SEARCH_PARAMS:
            skipped[type_ or "(unknown)"] += 1
            if raw.get("fullUrl"):
                dropped[raw["fullUrl"]] = type_
            continue
        entry = dict(raw)
        if kind in ("collection", "searchset"):
            resource = raw.get("resource") or {}
            rid = resource.get("id")
            request = {"method": "PUT", "url": f"{type_}/{rid}"} if rid else None
            entry = {
                "fullUrl": raw.get("fullUrl"),
                "resource": resource,
                "request": request or {"method": "POST", "url": type_},
            }
        entries.append(entry)
    if dropped:
        for entry in entries:
            _unlink(entry.get("resource"), dropped)
    out_kind = "batch" if kind == "batch" else "transaction"
    return {"resourceType": "Bundle", "type": out_kind, "entry": entries}, skipped


def load_bundle(store: MockStore, bundle: Any, *, base: str = DEFAULT_BASE) -> LoadReport:
    """Load one Bundle; raise FhirHttpError if a transaction is refused."""
    prepared, skipped = prepare(bundle)
    report = LoadReport(skipped=skipped, bundles=1)
    if not prepared["entry"]:
        return report
    response = process_bundle(store, prepared, base_url=base)
    for entry in response.get("entry") or []:
        resp = entry.get("response") or {}
        status = str(resp.get("status", ""))
        type_ = str(resp.get("location", "")).split("/", 1)[0]
        if status.startswith("201"):
            report.created[type_] += 1
        elif status.startswith("200") and type_:
            report.existing[type_] += 1
        elif not status.startswith("2"):
            diagnostics = ((resp.get("outcome") or {}).get("issue") or [{}])[0].get("diagnostics")
            report.failures.append(("batch entry", str(diagnostics or status)))
    return report


def bundle_files(path: Path) -> list[Path]:
    """A file, or a directory's ``*.json`` files with Synthea's shared-data files first."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a file nor a directory")
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    return sorted(files, key=lambda p: not p.name.startswith(_FIRST))


def load_path(store: MockStore, path: Path, *, base: str = DEFAULT_BASE) -> LoadReport:
    """Load a Bundle file or a directory of them; one bad file does not stop the rest."""
    report = LoadReport()
    for file in bundle_files(path):
        try:
            bundle = jsonio.loads(file.read_bytes())
            report.add(load_bundle(store, bundle, base=base))
        except FhirHttpError as exc:
            report.failures.append((file.name, exc.diagnostics))
        except (OSError, ValueError) as exc:
            problem = "not valid JSON" if isinstance(exc, ValueError) else type(exc).__name__
            report.failures.append((file.name, problem))
    return report


router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/load")
async def admin_load(request: Request) -> JSONResponse:
    """Load a Bundle posted as the body; answer with the load report."""
    try:
        bundle = jsonio.loads(await request.body())
    except ValueError:
        raise FhirHttpError(400, "request body is not valid JSON") from None
    report = load_bundle(request.app.state.store, bundle, base=base_url(request))
    return JSONResponse(report.as_json())


class LoadingAdmin:
    """The ``POST /admin/load`` endpoint, as an app extension."""

    def install(self, app: FastAPI) -> None:
        """Add ``/admin/load`` to ``app``."""
        app.include_router(router)
