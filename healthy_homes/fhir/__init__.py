"""FHIR R4 plumbing: the async client, auth, paging and resource helpers."""

from healthy_homes.fhir.client import FhirClient

__all__ = ["FhirClient"]
