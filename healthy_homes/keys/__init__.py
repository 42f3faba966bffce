"""``healthy-homes keys``: signing keys for SMART Backend Services."""
