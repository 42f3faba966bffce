"""Wire formats against CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/).

Hand-written JSON shaped like the specification's own examples must validate with our
models; what the specification forbids must not; and what our service sends is checked
field by field against the specification's tables, independently of our models.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from healthy_homes.flags.cds_hooks.models import (
    Card,
    CdsResponse,
    DiscoveryResponse,
    FeedbackRequest,
    HookRequest,
    Link,
    PatientViewContext,
)
from tests.cds_hooks.ehr import SERVICE, bearer, hook_body, token
from tests.flags.world import NOW, patient

# -- shaped like the specification's examples ------------------------------------------

DISCOVERY = {
    "services": [
        {
            "hook": "patient-view",
            "title": "Greeter",
            "description": "Says hello when a chart opens",
            "id": "greeter",
            "prefetch": {"subject": "Patient/{{context.patientId}}"},
        },
        {
            "hook": "order-select",
            "description": "Echoes orders",
            "id": "echo",
        },
    ]
}

REQUEST = {
    "hookInstance": "3f2c2a58-6a0d-4c38-9d3b-0f3c8f5c2e11",
    "fhirServer": "https://ehr.example.org/fhir",
    "hook": "patient-view",
    "fhirAuthorization": {
        "access_token": "opaque",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Patient.read",
        "subject": "our-service",
    },
    "context": {"userId": "Practitioner/abc", "patientId": "123", "encounterId": "456"},
    "prefetch": {"subject": {"resourceType": "Patient", "id": "123"}, "missing": None},
}

RESPONSE = {
    "cards": [
        {
            "uuid": "0c6c4b0e-5a47-4b0f-8b9c-8a1f0e7c2d33",
            "summary": "An example card",
            "indicator": "info",
            "detail": "Some **markdown**.",
            "source": {
                "label": "Example service",
                "url": "https://example.org",
                "icon": "https://example.org/icon.png",
                "topic": {"system": "https://example.org/topics", "code": "t1"},
            },
            "links": [
                {"label": "Docs", "url": "https://example.org/docs", "type": "absolute"},
                {
                    "label": "An app",
                    "url": "https://app.example.org/launch",
                    "type": "smart",
                    "appContext": '{"session": 1}',
                },
            ],
        },
        {
            "summary": "Another card",
            "indicator": "warning",
            "source": {"label": "Example service"},
            "suggestions": [
                {
                    "label": "Do it",
                    "uuid": "b4a2d4a6-1c6e-4bb3-a7a6-0d0f2f1f5c77",
                    "isRecommended": True,
                    "actions": [
                        {
                            "type": "create",
                            "description": "Create an order",
                            "resource": {"resourceType": "ServiceRequest", "id": "sr1"},
                        },
                        {
                            "type": "delete",
                            "description": "Remove the old one",
                            "resourceId": "ServiceRequest/sr0",
                        },
                    ],
                }
            ],
            "selectionBehavior": "any",
            "overrideReasons": [
                {"code": "refused", "system": "https://example.org/reasons", "display": "Refused"}
            ],
        },
    ]
}

FEEDBACK = {
    "feedback": [
        {
            "card": "0c6c4b0e-5a47-4b0f-8b9c-8a1f0e7c2d33",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "b4a2d4a6-1c6e-4bb3-a7a6-0d0f2f1f5c77"}],
            "outcomeTimestamp": "2026-11-24T09:00:00Z",
        },
        {
            "card": "9a1f6d0b-7c2e-4b55-8f0e-2c3d4e5f6a7b",
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-24T09:01:00Z",
        },
        {
            "card": "9a1f6d0b-7c2e-4b55-8f0e-2c3d4e5f6a7b",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {"code": "r1", "system": "https://example.org/reasons"},
                "userComment": "A comment",
            },
            "outcomeTimestamp": "2026-11-24T09:02:00Z",
        },
    ]
}


def test_spec_shaped_examples_validate() -> None:
    assert len(DiscoveryResponse.model_validate(DISCOVERY).services) == 2
    request = HookRequest.model_validate(REQUEST)
    PatientViewContext.model_validate(request.context)
    response = CdsResponse.model_validate(RESPONSE)
    assert response.cards[1].suggestions[0].actions[1].type == "delete"  # type: ignore[index]
    assert len(FeedbackRequest.model_validate(FEEDBACK).feedback) == 3
    # Unknown fields (the spec reserves 'extension') are tolerated on the way in.
    HookRequest.model_validate({**REQUEST, "extension": {"org.example.x": 1}})


def _card(**changes: Any) -> dict[str, Any]:
    card = dict(RESPONSE["cards"][1])  # type: ignore[index]
    card.update(changes)
    return {k: v for k, v in card.items() if v is not None}


@pytest.mark.parametrize(
    "card",
    [
        _card(summary="x" * 140),  # "<140-character summary"
        _card(summary=None),
        _card(indicator="urgent"),
        _card(selectionBehavior=None),  # required when there are suggestions
        _card(source=None),
        _card(overrideReasons=[{"code": "r1"}]),  # display is required
        _card(suggestions=[{"label": "x", "actions": [{"type": "create", "description": "d"}]}]),
    ],
)
def test_cards_the_spec_forbids_are_rejected(card: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Card.model_validate(card)


def test_other_forbidden_shapes() -> None:
    with pytest.raises(ValidationError):
        Link.model_validate(
            {"label": "x", "url": "https://a.org", "type": "absolute", "appContext": "ctx"}
        )
    with pytest.raises(ValidationError):
        HookRequest.model_validate({k: v for k, v in REQUEST.items() if k != "fhirServer"})
    with pytest.raises(ValidationError):
        HookRequest.model_validate({**REQUEST, "hookInstance": "not-a-uuid"})
    accepted_without_suggestions = {**FEEDBACK["feedback"][0], "acceptedSuggestions": None}
    with pytest.raises(ValidationError):
        FeedbackRequest.model_validate({"feedback": [accepted_without_suggestions]})


# -- what our service sends, checked against the spec's tables -------------------------

CARD_FIELDS = {
    "uuid",
    "summary",
    "detail",
    "indicator",
    "source",
    "suggestions",
    "selectionBehavior",
    "overrideReasons",
    "links",
}
CARD_REQUIRED = {"summary", "indicator", "source"}
SOURCE_FIELDS = {"label", "url", "icon", "topic"}
SUGGESTION_FIELDS = {"label", "uuid", "isRecommended", "actions"}
ACTION_FIELDS = {"type", "description", "resource", "resourceId"}
LINK_FIELDS = {"label", "url", "type", "appContext"}
CODING_FIELDS = {"system", "code", "display"}


def _no_null_or_empty(value: Any, path: str = "") -> None:
    """'JSON elements SHALL NOT be null' and optional ones are omitted rather than empty."""
    assert value is not None, f"null at {path}"
    if isinstance(value, dict):
        assert value, f"empty object at {path}"
        for key, item in value.items():
            _no_null_or_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"empty array at {path}"
        for i, item in enumerate(value):
            _no_null_or_empty(item, f"{path}[{i}]")
    elif isinstance(value, str):
        assert value, f"empty string at {path}"


async def test_our_card_has_only_spec_fields_and_no_nulls(cds) -> None:
    body = hook_body("p1", prefetch={"patient": patient("p1", 1)})
    answer = await cds.post(f"/cds-services/{SERVICE}", json=body, headers=bearer(token(NOW)))
    assert answer.headers["content-type"].startswith("application/json")
    [card] = answer.json()["cards"]
    _no_null_or_empty(card)
    assert CARD_REQUIRED <= set(card) <= CARD_FIELDS
    assert set(card["source"]) <= SOURCE_FIELDS and "label" in card["source"]
    assert set(card["source"]["topic"]) <= CODING_FIELDS
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["selectionBehavior"] in ("at-most-one", "any")
    for suggestion in card["suggestions"]:
        assert set(suggestion) <= SUGGESTION_FIELDS and "label" in suggestion
        for action in suggestion["actions"]:
            assert set(action) <= ACTION_FIELDS
            assert action["type"] in ("create", "update", "delete") and action["description"]
    for link in card["links"]:
        assert set(link) <= LINK_FIELDS and link["type"] in ("absolute", "smart")
        assert link["url"].startswith("https://")
    for reason in card["overrideReasons"]:
        assert set(reason) <= CODING_FIELDS and reason["code"] and reason["display"]


async def test_our_discovery_has_only_spec_fields(cds) -> None:
    document = (await cds.get("/cds-services")).json()
    _no_null_or_empty(document)
    for service in document["services"]:
        assert {"hook", "id", "description"} <= set(service)
        assert set(service) <= {
            "hook",
            "id",
            "title",
            "description",
            "prefetch",
            "usageRequirements",
        }
