"""The shared web set-up: headers, CSP nonce, CSRF, autoescaping, assets, identity."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from healthy_homes.errors import ConfigError
from healthy_homes.web import assets
from healthy_homes.web.app import create_web_app
from healthy_homes.web.csrf import COOKIE, sign
from healthy_homes.web.identity import Clinician, ProxyHeaderIdentity
from healthy_homes.web.templating import make_environment, render

SECRET = b"0123456789abcdef0123456789abcdef"
PAYLOAD = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _fake_assets(root: Path) -> Path:
    """An assets directory laid out as npm leaves it (tiny files, same names)."""
    package = root / "node_modules" / "nhsuk-frontend"
    dist = package / "dist" / "nhsuk"
    (dist / "assets" / "images").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"version": assets.NHSUK_FRONTEND_VERSION}))
    (dist / assets.CSS_FILE).write_text(".nhsuk-header{background:#005eb8}")
    (dist / assets.JS_FILE).write_text("export function initAll() {}")
    (dist / "assets" / "images" / "favicon.svg").write_text("<svg/>")
    return root


def _app(tmp_path: Path) -> FastAPI:
    app = create_web_app(title="t", csrf_secret=SECRET, assets_dir=_fake_assets(tmp_path))
    env = make_environment()

    async def page(request: Request) -> Response:
        clinician = Clinician("u1", PAYLOAD)
        return render(env, request, "web/base.html", {"clinician": clinician})

    async def change(request: Request) -> dict[str, bool]:
        return {"changed": True}

    app.add_api_route("/", page, methods=["GET"])
    app.add_api_route("/change", change, methods=["POST"])
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(_app(tmp_path)) as http:
        yield http


async def test_pages_carry_a_strict_csp_with_a_fresh_nonce(client: httpx.AsyncClient) -> None:
    first = await client.request("GET", "/")
    second = await client.request("GET", "/")
    policy = first.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'nonce="{nonce.group(1)}"' in first.text  # nhsuk's inline script carries it
    assert nonce.group(1) not in second.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
    for header, value in {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }.items():
        assert first.headers[header] == value


async def test_patient_strings_are_autoescaped(client: httpx.AsyncClient) -> None:
    html = (await client.request("GET", "/")).text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x" in html


async def test_nhsuk_assets_are_served_and_cacheable(client: httpx.AsyncClient) -> None:
    css = await client.request("GET", "/assets/nhsuk-frontend.min.css")
    assert css.status_code == 200 and "005eb8" in css.text
    assert css.headers["cache-control"].startswith("public")
    js = await client.request("GET", "/assets/nhsuk-frontend.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert (await client.get("/assets/images/favicon.svg")).status_code == 200
    assert (await client.get("/assets/../package.json")).status_code == 404
    assert (await client.get("/static/web/init.js")).status_code == 200


async def test_missing_assets_are_a_404_not_a_crash(tmp_path: Path) -> None:
    app = create_web_app(title="t", csrf_secret=SECRET, assets_dir=tmp_path / "none")
    async with _client(app) as http:
        assert (await http.get("/assets/nhsuk-frontend.min.css")).status_code == 404
        assert (await http.get("/assets/images/favicon.svg")).status_code == 404


async def _token(client: httpx.AsyncClient) -> tuple[str, str]:
    page = await client.request("GET", "/")
    client.cookies.clear()  # each request below says exactly which cookie it sends
    cookie = page.cookies[COOKIE]
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    assert token.group(1) == sign(SECRET, cookie)
    assert (
        "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
    )
    return cookie, token.group(1)


async def test_state_changing_requests_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    cookie, token = await _token(client)
    jar = {"cookie": f"{COOKIE}={cookie}"}
    ok = await client.request("POST", "/change", headers={**jar, "x-csrf-token": token})
    assert ok.status_code == 200 and ok.json() == {"changed": True}
    refused = [
        await client.request("POST", "/change", headers=jar),  # no token
        await client.request("POST", "/change", headers={"x-csrf-token": token}),  # no cookie
        await client.request("POST", "/change", headers={**jar, "x-csrf-token": token + "x"}),
        await client.request(
            "POST",
            "/change",
            headers={**jar, "x-csrf-token": sign(SECRET, "another-cookie-value-0123456789abcdef")},
        ),
        await client.request(
            "POST",
            "/change",
            headers={**jar, "x-csrf-token": token, "origin": "http://evil.example"},
        ),
        await client.request(
            "POST",
            "/change",
            headers={**jar, "x-csrf-token": token, "sec-fetch-site": "cross-site"},
        ),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "content-security-policy" in refused[0].headers


def test_proxy_identity_is_trusted_only_from_the_proxy() -> None:
    provider = ProxyHeaderIdentity(trusted_proxies=["10.1.2.3/32"])

    def request(host: str, headers: dict[str, str]) -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "client": (host, 1), "headers": raw})

    headers = {
        "X-Remote-User": "u123",
        "X-Remote-User-Name": "Dr  A   Example",
        "X-Remote-Practitioner": "gp-7",
    }
    assert provider.identify(request("10.1.2.3", headers)) == Clinician(
        "u123", "Dr A Example", "Practitioner/gp-7"
    )
    assert provider.identify(request("10.9.9.9", headers)) is None
    assert provider.identify(request("10.1.2.3", {})) is None


def test_assets_install_state_and_errors(tmp_path: Path) -> None:
    assert not assets.is_installed(tmp_path)
    assert assets.installed_version(tmp_path) is None
    _fake_assets(tmp_path)
    assert assets.is_installed(tmp_path)
    assert assets.install(tmp_path) is False  # already there: npm is not run
    with pytest.raises(ConfigError, match="npm"):
        assets.install(tmp_path / "elsewhere", npm=str(tmp_path / "no-npm-here"))


def test_default_assets_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(assets.ENV_VAR, "/srv/hh-assets")
    assert assets.default_assets_dir() == Path("/srv/hh-assets")
    monkeypatch.delenv(assets.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/cache")
    assert assets.default_assets_dir() == Path(
        f"/tmp/cache/healthy-homes/nhsuk-frontend-{assets.NHSUK_FRONTEND_VERSION}"
    )
