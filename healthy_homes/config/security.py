"""The ``[security]`` section: where the keys that encrypt patient data at rest come from.

Either a key file (JSON, readable by its owner only; ``healthy-homes keys create-keyring``
writes one) or the keys themselves, inline, which in practice means the environment
(``HEALTHY_HOMES__SECURITY__DATA_KEYS`` and friends) so no key sits in the TOML file.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

#: Key ids travel inside every ciphertext; short and plain keeps the envelope small.
KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SecurityConfig(BaseModel):
    """Encryption keys for identifiable columns and the keyed hash used for lookups."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_file: str | None = Field(
        default=None,
        description="JSON key file (mode 0600) holding the data keys and the HMAC key",
    )
    active_key: str | None = Field(
        default=None, description="id of the data key new values are encrypted with (inline)"
    )
    data_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="key id -> base64 of a 32-byte AES-256-GCM key (inline; older keys "
        "stay here for reading until 'keys rotate' has re-encrypted everything)",
    )
    hmac_key: SecretStr | None = Field(
        default=None, description="base64 of the HMAC-SHA256 key for keyed hashes (inline)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecurityConfig:
        inline = bool(self.data_keys) or self.active_key is not None or self.hmac_key is not None
        if self.key_file is not None and inline:
            raise ValueError("set either key_file or the inline keys, not both")
        if inline:
            missing = [
                name
                for name, value in (
                    ("active_key", self.active_key),
                    ("data_keys", self.data_keys or None),
                    ("hmac_key", self.hmac_key),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"inline keys also need: {', '.join(missing)}")
            for key_id in self.data_keys:
                if not KEY_ID.match(key_id):
                    raise ValueError(f"data key id '{key_id}' must match {KEY_ID.pattern}")
            if self.active_key not in self.data_keys:
                raise ValueError(f"active_key '{self.active_key}' is not one of data_keys")
        return self

    @property
    def configured(self) -> bool:
        """Whether any key source is set."""
        return self.key_file is not None or bool(self.data_keys)
