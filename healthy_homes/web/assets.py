"""nhsuk-frontend's CSS, JS and images: installed from the npm registry, never vendored.

``healthy-homes web setup`` runs npm into an assets directory outside the repository;
pages serve the files from there under ``/assets`` (the path the stylesheet's own
``url(/assets/images/...)`` references expect).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from healthy_homes.errors import ConfigError

#: Must match the templates of the pinned ``nhsuk-frontend-jinja`` (0.10.2 ports 10.6.1).
NHSUK_FRONTEND_VERSION = "10.6.1"
PACKAGE = "nhsuk-frontend"
ENV_VAR = "HEALTHY_HOMES_WEB_ASSETS"
CSS_FILE = "nhsuk-frontend.min.css"
JS_FILE = "nhsuk-frontend.min.js"
NPM_TIMEOUT_SECONDS = 300


def default_assets_dir() -> Path:
    """``$HEALTHY_HOMES_WEB_ASSETS``, else a per-user cache directory for this version."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "healthy-homes" / f"{PACKAGE}-{NHSUK_FRONTEND_VERSION}"


def dist_dir(assets_dir: Path) -> Path:
    """Where the package's compiled files sit inside an assets directory."""
    return assets_dir / "node_modules" / PACKAGE / "dist" / "nhsuk"


def installed_version(assets_dir: Path) -> str | None:
    """The nhsuk-frontend version installed in ``assets_dir``, or None."""
    manifest = assets_dir / "node_modules" / PACKAGE / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return str(version) if version else None


def is_installed(assets_dir: Path) -> bool:
    """The pinned version is there with its stylesheet and script."""
    dist = dist_dir(assets_dir)
    return (
        installed_version(assets_dir) == NHSUK_FRONTEND_VERSION
        and (dist / CSS_FILE).is_file()
        and (dist / JS_FILE).is_file()
    )


def install(assets_dir: Path, *, npm: str | None = None) -> bool:
    """Install the pinned nhsuk-frontend with npm; False when it was already there."""
    if is_installed(assets_dir):
        return False
    npm_path = npm or shutil.which("npm")
    if npm_path is None:
        raise ConfigError("npm is needed to install nhsuk-frontend; install Node.js and npm")
    assets_dir.mkdir(parents=True, exist_ok=True)
    # A package.json of our own makes npm install here, not in a parent project.
    (assets_dir / "package.json").write_text(
        json.dumps({"name": "healthy-homes-web-assets", "private": True}), encoding="utf-8"
    )
    command = [
        npm_path,
        "install",
        "--prefix",
        str(assets_dir),
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--save-exact",
        f"{PACKAGE}@{NHSUK_FRONTEND_VERSION}",
    ]
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, npm from PATH or the caller
            command, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"npm could not install {PACKAGE}: {exc}") from exc
    if done.returncode != 0 or not is_installed(assets_dir):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ConfigError(f"npm could not install {PACKAGE}: {' / '.join(tail)}")
    return True
