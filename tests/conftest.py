pytest_plugins = ["healthy_homes.mock_server.pytest_plugin"]


# -- encryption keys (healthy_homes.crypto) ------------------------------------------------
# Every test gets the same fixed keyring, installed in-process and in the environment so
# worker subprocesses and 'Database.from_settings' find the same keys. Fixed, not random:
# a failure reproduces byte for byte.

import base64  # noqa: E402
import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from healthy_homes.crypto import KeyRing, set_keyring  # noqa: E402

TEST_DATA_KEY = bytes(range(32))
TEST_HMAC_KEY = bytes(range(32, 64))
TEST_KEY_ID = "test1"


def test_keyring() -> KeyRing:
    """The fixed keyring every test runs with."""
    return KeyRing({TEST_KEY_ID: TEST_DATA_KEY}, TEST_KEY_ID, TEST_HMAC_KEY)


test_keyring.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _test_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyRing]:
    ring = test_keyring()
    monkeypatch.setenv("HEALTHY_HOMES__SECURITY__ACTIVE_KEY", TEST_KEY_ID)
    monkeypatch.setenv(
        "HEALTHY_HOMES__SECURITY__DATA_KEYS",
        json.dumps({TEST_KEY_ID: base64.b64encode(TEST_DATA_KEY).decode()}),
    )
    monkeypatch.setenv(
        "HEALTHY_HOMES__SECURITY__HMAC_KEY", base64.b64encode(TEST_HMAC_KEY).decode()
    )
    set_keyring(ring)
    yield ring
    set_keyring(None)
