"""The housing inbox: a FHIR endpoint and web pages for a housing team without a case system.

Each team has its own FHIR base (``/teams/{team}/fhir``) that receives the connector's
referral transactions, and officers who sign in to work through the queue. A Task moved
by an officer is what the connector reads back to close the loop.
"""
