"""Retention: the data of patients never referred, and old referrals, purged on a policy.

``retention.purge.purge`` plans and (unless a dry run) deletes; ``healthy-homes purge
[--dry-run]`` is the command, and the connector runs it nightly. Audit entries are kept:
they name patients only by a keyed pseudonym. Nothing is re-exported here: the command's
parser is built from this package, and the purge brings the database (Alembic).
"""
