"""``healthy-homes keys``: signing keys for SMART Backend Services, and key rotation for
the keys that encrypt patient data at rest (the keys themselves: ``healthy_homes.crypto``)."""
