"""A FastAPI app with the shared web set-up: headers, CSRF, nhsuk-frontend assets.

Page packages (``flags.popup``) start from :func:`create_web_app`, add sign-in
(:func:`healthy_homes.web.signin.install_sign_in`) and routes, each guarded by
:func:`healthy_homes.web.access.require_role`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from healthy_homes.web import assets
from healthy_homes.web.csrf import CsrfMiddleware, FormCsrfToken
from healthy_homes.web.security import SecurityHeadersMiddleware

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def create_web_app(
    *,
    title: str,
    csrf_secret: bytes,
    assets_dir: Path | None = None,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """An app with security headers, CSRF protection and ``/assets`` served."""
    # No OpenAPI pages: this is a clinician-facing site, not a public API.
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    mount_assets(app, assets_dir or assets.default_assets_dir())
    app.mount("/static/web", StaticFiles(directory=STATIC), name="web-static")
    app.add_middleware(CsrfMiddleware, secret=csrf_secret)
    app.add_middleware(FormCsrfToken)  # outside the check: a form's field becomes the header
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: refusals get headers too
    return app


def mount_assets(app: FastAPI, assets_dir: Path) -> None:
    """Serve nhsuk-frontend's stylesheet, script and images under ``/assets``."""
    dist = assets.dist_dir(assets_dir)
    if not assets.is_installed(assets_dir):
        log.warning(
            "nhsuk-frontend %s is not installed in %s; pages will be unstyled. "
            "Run 'healthy-homes web setup'.",
            assets.NHSUK_FRONTEND_VERSION,
            assets_dir,
        )

    def _file(name: str) -> Callable[[], Response]:
        def serve() -> Response:
            path = dist / name
            if not path.is_file():
                return Response("not installed", status_code=404, media_type="text/plain")
            return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

        return serve

    for name in (assets.CSS_FILE, assets.JS_FILE):
        app.add_api_route(f"/assets/{name}", _file(name), methods=["GET"], include_in_schema=False)
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="nhsuk-assets")
