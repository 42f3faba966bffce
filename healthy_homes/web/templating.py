"""The Jinja2 environment: our templates over nhsuk-frontend-jinja's, always autoescaped.

Every patient-derived string reaches the page through ``{{ }}``, which escapes it;
``|safe`` and ``Markup`` are never applied to data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import BaseLoader, ChainableUndefined, ChoiceLoader, Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse

from healthy_homes.web.security import csp_nonce

ASSET_PATH = "/assets"
SERVICE_NAME = "Healthy Homes"


def make_environment(page_packages: Iterable[str] = ()) -> Environment:
    """An environment loading each page package's ``templates/``, then ours, then nhsuk's."""
    loaders: list[BaseLoader] = [PackageLoader(name, "templates") for name in page_packages]
    loaders.append(PackageLoader("healthy_homes.web", "templates"))
    loaders.append(PackageLoader("nhsuk_frontend_jinja"))
    # nhsuk-frontend-jinja's macros read optional nested parameters (params.a.b) and
    # need ChainableUndefined; autoescape is on for every template whatever its name.
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    env: Environment,
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the request's CSP nonce, CSRF token and asset path in context."""
    values: dict[str, Any] = {
        "request": request,
        "cspNonce": csp_nonce(request.scope),
        "assetPath": ASSET_PATH,
        "serviceName": SERVICE_NAME,
        "csrfToken": request.scope.get("state", {}).get("csrf_token", ""),
    }
    values.update(context or {})
    html = env.get_template(name).render(values)
    return HTMLResponse(html, status_code=status_code)
