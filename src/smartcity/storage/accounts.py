"""Accounts storage: principals, roles per tenant, API keys, agency shares, type marks, audit log.

Principals (users, service accounts, devices) are global; everything that grants access is kept
per tenant: a principal's roles, the entities a device feeds, what is shared with an agency,
which entity types are public or restricted, and the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """A user, service account or device as stored (the password only as its hash)."""

    id: str
    name: str
    kind: str
    created_at: str
    password_hash: str | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class PrincipalAccess:
    """A principal with its roles (and a device's entities) in one tenant: what a request needs."""

    principal: PrincipalRecord
    roles: frozenset[str]
    entity_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: its public prefix and the hash of the whole key."""

    prefix: str
    principal_id: str
    key_hash: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """A grant to an agency: one entity id or every entity of one type, until it expires."""

    id: str
    tenant: str
    principal_id: str
    entity_id: str | None
    entity_type: str | None
    expires_at: str
    created_at: str
    created_by: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who did what to which target in which tenant, when, and how it ended."""

    at: str
    tenant: str
    principal: str
    action: str
    target: str
    outcome: str
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit records to list (times as `isoformat` strings; since inclusive, until not)."""

    tenant: str
    since: str | None = None
    until: str | None = None
    principal: str | None = None
    limit: int = 100
    after_seq: int = 0


class AccountStore(Protocol):
    """Where principals, their roles, keys, shares, type marks and the audit log are kept."""

    def add_principal(self, principal: PrincipalRecord) -> None:
        """Store a new principal; AlreadyExists if the name is taken."""
        ...

    def principal_by_name(self, name: str) -> PrincipalRecord | None:
        """Return the principal with this name, if any."""
        ...

    def principal_by_id(self, principal_id: str) -> PrincipalRecord | None:
        """Return the principal with this id, if any."""
        ...

    def set_password_hash(self, principal_id: str, password_hash: str) -> None:
        """Replace a principal's password hash."""
        ...

    def set_disabled(self, principal_id: str, disabled: bool) -> None:
        """Disable (or enable again) a principal: a disabled one cannot authenticate."""
        ...

    def principals_in(self, tenant: str) -> list[tuple[PrincipalRecord, frozenset[str]]]:
        """Return every principal with a role in the tenant, with its roles there, by name."""
        ...

    def access(self, principal_id: str, tenant: str) -> PrincipalAccess | None:
        """Return a principal with its roles and entities in a tenant, in one read."""
        ...

    def access_by_key(
        self, prefix: str, tenant: str
    ) -> tuple[ApiKeyRecord, PrincipalAccess] | None:
        """Return a key and its principal's access in a tenant, in one read."""
        ...

    def grant(self, principal_id: str, tenant: str, role: str) -> None:
        """Give a principal a role in a tenant (nothing happens if it has it already)."""
        ...

    def revoke(self, principal_id: str, tenant: str, role: str | None = None) -> None:
        """Take one role (or every role when None) of a principal in a tenant away."""
        ...

    def roles(self, principal_id: str, tenant: str) -> frozenset[str]:
        """Return the roles a principal holds in a tenant."""
        ...

    def tenants_of(self, principal_id: str) -> frozenset[str]:
        """Return every tenant where a principal holds a role."""
        ...

    def set_device_entities(self, principal_id: str, tenant: str, ids: Sequence[str]) -> None:
        """Replace the entity ids a device principal feeds in a tenant."""
        ...

    def device_entities(self, principal_id: str, tenant: str) -> frozenset[str]:
        """Return the entity ids a device principal feeds in a tenant."""
        ...

    def add_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key (its hash)."""
        ...

    def key_by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        """Return the key with this public prefix, if any."""
        ...

    def keys_of(self, principal_id: str) -> list[ApiKeyRecord]:
        """Return every key of a principal, oldest first."""
        ...

    def revoke_key(self, prefix: str, at: str) -> None:
        """Mark a key revoked from `at` on."""
        ...

    def add_share(self, share: ShareRecord) -> None:
        """Store a grant to an agency."""
        ...

    def shares(self, tenant: str, principal_id: str | None = None) -> list[ShareRecord]:
        """Return the grants of a tenant (of one agency when given), expired ones included."""
        ...

    def delete_share(self, tenant: str, share_id: str) -> bool:
        """Delete a grant; tell whether there was one."""
        ...

    def mark_type(self, tenant: str, entity_type: str, mark: str) -> None:
        """Mark an entity type of a tenant ('public' or 'restricted')."""
        ...

    def unmark_type(self, tenant: str, entity_type: str, mark: str) -> None:
        """Remove a mark from an entity type of a tenant."""
        ...

    def marked_types(self, tenant: str, mark: str) -> frozenset[str]:
        """Return the entity types of a tenant that carry a mark."""
        ...

    def record_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append records to the audit log."""
        ...

    def record_audit_in(self, cursor: Any, records: Sequence[AuditRecord]) -> None:
        """Append records to the audit log within a write transaction of the same database."""
        ...

    def record_login_failure(self, name: str, at: str, forget_before: str) -> int:
        """Record a failed login for `name`; return its failures since `forget_before`."""
        ...

    def login_failures(self, name: str, since: str) -> int:
        """Return how many failed logins `name` had since `since`."""
        ...

    def clear_login_failures(self, name: str) -> None:
        """Forget the failed logins of `name` (after a successful one)."""
        ...

    def prune_audit(self, older_than: str, limit: int) -> int:
        """Delete up to `limit` of the oldest audit records made before `older_than`."""
        ...

    def audit(self, query: AuditFilter) -> list[AuditRecord]:
        """Return audit records of one tenant, oldest first."""
        ...
