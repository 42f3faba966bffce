"""Retention: the data of patients never referred, and old referrals, purged on a policy.

``purge`` plans and (unless a dry run) deletes; ``healthy-homes purge [--dry-run]`` is
the command, and the connector runs it nightly. Audit entries are kept: they name
patients only by a keyed pseudonym.
"""

from healthy_homes.retention.purge import PurgeReport, purge

__all__ = ["PurgeReport", "purge"]
