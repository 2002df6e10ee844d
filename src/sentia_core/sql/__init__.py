"""SQL query optimizer: fingerprinting with redaction, statistics, N+1 detection."""

from ._fingerprint import fingerprint, redact, shape_id

__all__ = ["fingerprint", "redact", "shape_id"]
