"""OperationOutcome bodies and the one exception the routes raise to answer an error."""

from __future__ import annotations

from typing import Any

FHIR_JSON = "application/fhir+json"

JSON = dict[str, Any]

_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
    503: "transient",
}


def operation_outcome(
    severity: str, code: str, diagnostics: str, *, expression: list[str] | None = None
) -> JSON:
    """A one-issue OperationOutcome."""
    issue: JSON = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class FhirHttpError(Exception):
    """Answer the request with ``status`` and an OperationOutcome."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        issues: list[JSON] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or _ISSUE_CODES.get(status, "processing")
        self.headers = headers or {}
        self.issues = issues

    def outcome(self) -> JSON:
        """The OperationOutcome body."""
        if self.issues:
            return {"resourceType": "OperationOutcome", "issue": self.issues}
        severity = "error" if self.status < 500 else "fatal"
        return operation_outcome(severity, self.code, self.diagnostics)
