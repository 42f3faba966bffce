"""One verifying TLS context for every client on the default trust store.

httpx builds a fresh ``ssl.SSLContext`` for each client made with ``verify=True``, and
each loads the whole CA bundle: about 1 MiB and 20 ms of CPU. A deployment serving a
hundred practices would hold a hundred copies, and a client made per call (a token
fetch, a capacity read) would load it every time. A context is safe to share.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def default_context() -> ssl.SSLContext:
    """The shared context: httpx's own default (certifi, or ``SSL_CERT_FILE``/``_DIR``)."""
    return httpx.create_ssl_context()


def verify_for(verify: bool | str | ssl.SSLContext) -> bool | str | ssl.SSLContext:
    """``verify`` as httpx takes it, with True meaning the shared default context."""
    return default_context() if verify is True else verify
