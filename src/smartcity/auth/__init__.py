"""Principals, roles, tenants, credentials and the audit log (no web framework here)."""
