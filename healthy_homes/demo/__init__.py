"""The end-to-end demo: a synthetic practice, the connector, a clinician and a housing team."""
