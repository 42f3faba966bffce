"""The store tests' throwaway PostgreSQL database, for the scans here."""

from tests.store.conftest import postgres_url as postgres_url
