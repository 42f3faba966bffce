"""CDS Hooks 2.0 service: cards in the EHR for flagged patients, and their feedback."""
