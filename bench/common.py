"""What every bench script shares: the results document and a throwaway keyring.

Imported as ``common`` (a script's own directory is first on ``sys.path``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
if str(ROOT) not in sys.path:  # the scripts import the package and the test seeds from here
    sys.path.insert(0, str(ROOT))


def use_throwaway_keys() -> None:
    """Give this run (and the processes it starts) a random keyring, unless one is set.

    Identifiable columns are encrypted at rest, so a database cannot be opened without
    keys; the environment carries them to worker and server subprocesses.
    """
    os.environ.setdefault("HEALTHY_HOMES__SECURITY__ACTIVE_KEY", "bench")
    os.environ.setdefault(
        "HEALTHY_HOMES__SECURITY__DATA_KEYS",
        json.dumps({"bench": base64.b64encode(os.urandom(32)).decode()}),
    )
    os.environ.setdefault(
        "HEALTHY_HOMES__SECURITY__HMAC_KEY", base64.b64encode(os.urandom(32)).decode()
    )


def write_section(title: str, body: str, doc: Path = DOC) -> None:
    """Replace the section headed ``title`` in docs/benchmarks.md, or append it."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    section = f"{title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    doc.write_text(text)
