"""Models of the web app: the audit log and the permission holder for lab control."""

from .audit import AuditEntry
from .lab import LabControl

__all__ = ["AuditEntry", "LabControl"]
