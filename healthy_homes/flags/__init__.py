"""Flags: who to prompt the clinician about, and the FHIR Flag in the record."""
