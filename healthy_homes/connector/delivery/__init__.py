"""Referral delivery: the transactional outbox, its leased claims and the worker."""
