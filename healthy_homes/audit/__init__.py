"""The audit log: every disclosure and every human action, append-only and hash-chained.

``record_audit`` appends in the caller's transaction; ``verify_log`` checks the chain;
``healthy-homes audit verify|export`` are the commands (``audit/cli.py``).
"""

from healthy_homes.audit.chain import Actor, AuditEvent, record_audit, record_audit_many
from healthy_homes.audit.verify import VerifyResult, verify_entries, verify_log

__all__ = [
    "Actor",
    "AuditEvent",
    "VerifyResult",
    "record_audit",
    "record_audit_many",
    "verify_entries",
    "verify_log",
]
