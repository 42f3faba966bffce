"""Healthy Homes: GP registers to consented housing referrals, over FHIR."""

__version__ = "0.1.0"
