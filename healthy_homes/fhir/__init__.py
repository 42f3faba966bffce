"""FHIR R4 plumbing: the async client (``fhir.client``), auth, paging and resource helpers.

Nothing is imported here, so that importing ``healthy_homes.fhir.systems`` (as the mock
server does) does not pull in the client.
"""
