"""Accounts: manage principals, roles, keys, agency shares and type marks (and authenticate).

An admin acts only in its own tenant: it grants roles there, and changes the credentials of a
principal only when every role of that principal is in that tenant (otherwise an admin of one
tenant could take over an account that also works in another).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from smartcity.auth import keys, passwords
from smartcity.auth.authentication import Authenticator
from smartcity.auth.policy import (
    PUBLIC_MARK,
    RESTRICTED_MARK,
    Permission,
    require,
)
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.clock import isoformat
from smartcity.core.errors import (
    AlreadyExists,
    BadRequestData,
    ResourceNotFound,
)
from smartcity.storage.accounts import (
    ApiKeyRecord,
    AuditFilter,
    AuditRecord,
    PrincipalRecord,
    ShareRecord,
)

MARKS = (PUBLIC_MARK, RESTRICTED_MARK)


@dataclass(frozen=True, slots=True)
class PrincipalView:
    """A principal as shown to an admin of one tenant: never a hash."""

    id: str
    name: str
    kind: str
    roles: frozenset[str]
    disabled: bool
    created_at: str
    entity_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class KeyView:
    """An API key as listed: its public prefix and state, never the key."""

    prefix: str
    principal: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new API key: the whole key is in here once and nowhere else."""

    key: str
    prefix: str
    principal: PrincipalView


def parse_roles(names: Collection[str]) -> frozenset[Role]:
    """Turn role names into roles; BadRequestData names the unknown ones."""
    unknown = sorted(set(names) - {role.value for role in Role})
    if unknown:
        raise BadRequestData(
            f"unknown role {', '.join(unknown)}; roles are {', '.join(r.value for r in Role)}"
        )
    if not names:
        raise BadRequestData("give at least one role")
    return frozenset(Role(name) for name in names)


def check_name(name: str) -> None:
    """Refuse a principal name that cannot be typed and logged safely."""
    if not (1 <= len(name) <= 64) or not all(c.isalnum() or c in "._-@" for c in name):
        raise BadRequestData("a name is 1 to 64 letters, digits, '.', '_', '-' or '@'")


class AccountService(Authenticator):
    """Authentication, and the administration of principals, keys, shares and type marks."""

    def _now(self) -> str:
        return isoformat(self.access.clock.now())

    def _audit_change(self, caller: Caller, action: str, targets: list[tuple[str, str]]) -> None:
        """Record an administrative change, and forget what credentials were granted before."""
        self.forget_callers()
        self.access.record(caller, action, targets)

    # -- principals -----------------------------------------------------------------------------

    def _view(self, principal: PrincipalRecord, tenant: str) -> PrincipalView:
        roles = self.store.roles(principal.id, tenant)
        entity_ids = (
            self.store.device_entities(principal.id, tenant) if "device" in roles else frozenset()
        )
        return PrincipalView(
            principal.id,
            principal.name,
            principal.kind,
            roles,
            principal.disabled,
            principal.created_at,
            entity_ids,
        )

    def _find(self, caller: Caller, name: str) -> PrincipalRecord:
        """Return a principal with a role in the caller's tenant; 404 for any other."""
        principal = self.store.principal_by_name(name)
        if principal is None or caller.tenant not in self.store.tenants_of(principal.id):
            raise ResourceNotFound(f"no principal named {name!r} in this tenant")
        return principal

    def _owned(self, caller: Caller, name: str) -> PrincipalRecord:
        """Return a principal whose every role is in the caller's tenant (credentials change)."""
        principal = self._find(caller, name)
        if caller.kind != PrincipalKind.SYSTEM and self.store.tenants_of(principal.id) != {
            caller.tenant
        }:
            raise BadRequestData(
                f"{name} also holds roles in other tenants; change its credentials with the "
                "smartcity command on the server"
            )
        return principal

    def _create(
        self,
        caller: Caller,
        name: str,
        kind: PrincipalKind,
        roles: frozenset[Role],
        password_hash: str | None = None,
    ) -> PrincipalRecord:
        check_name(name)
        principal = PrincipalRecord(
            id=secrets.token_hex(12),
            name=name,
            kind=kind.value,
            created_at=self._now(),
            password_hash=password_hash,
        )
        self.store.add_principal(principal)
        for role in sorted(roles):
            self.store.grant(principal.id, caller.tenant, role.value)
        return principal

    def add_user(
        self, caller: Caller, name: str, password: str, roles: Collection[str]
    ) -> PrincipalView:
        """Create a user with a password and roles in the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        parsed = parse_roles(roles)
        principal = self._create(
            caller, name, PrincipalKind.USER, parsed, passwords.hash_password(password)
        )
        self._audit_change(caller, "user.add", [(name, "ok")])
        return self._view(principal, caller.tenant)

    def set_password(self, caller: Caller, name: str, password: str) -> None:
        """Replace a user's password."""
        require(caller, Permission.ADMINISTER)
        principal = self._owned(caller, name)
        self.store.set_password_hash(principal.id, passwords.hash_password(password))
        self._audit_change(caller, "user.password", [(name, "ok")])

    def principals(self, caller: Caller) -> list[PrincipalView]:
        """Return every principal with a role in the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        return [self._view(principal, caller.tenant) for principal, _ in self._members(caller)]

    def _members(self, caller: Caller) -> list[tuple[PrincipalRecord, frozenset[str]]]:
        return self.store.principals_in(caller.tenant)

    def principal(self, caller: Caller, name: str) -> PrincipalView:
        """Return one principal with a role in the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        return self._view(self._find(caller, name), caller.tenant)

    def grant(self, caller: Caller, name: str, roles: Collection[str]) -> PrincipalView:
        """Give an existing principal roles in the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        parsed = parse_roles(roles)
        principal = self.store.principal_by_name(name)
        if principal is None:
            raise ResourceNotFound(f"no principal named {name!r}")
        for role in sorted(parsed):
            self.store.grant(principal.id, caller.tenant, role.value)
        self._audit_change(caller, "role.grant", [(f"{name}:{r}", "ok") for r in sorted(parsed)])
        return self._view(principal, caller.tenant)

    def revoke(self, caller: Caller, name: str, roles: Collection[str] | None) -> None:
        """Take roles (every role when None) of a principal in the caller's tenant away."""
        require(caller, Permission.ADMINISTER)
        principal = self._find(caller, name)
        if roles is None:
            self.store.revoke(principal.id, caller.tenant)
            self._audit_change(caller, "role.revoke", [(f"{name}:*", "ok")])
            return
        for role in sorted(parse_roles(roles)):
            self.store.revoke(principal.id, caller.tenant, role.value)
        self._audit_change(caller, "role.revoke", [(f"{name}:{r}", "ok") for r in sorted(roles)])

    def set_disabled(self, caller: Caller, name: str, disabled: bool) -> None:
        """Disable a principal (no login, no key works) or enable it again."""
        require(caller, Permission.ADMINISTER)
        principal = self._owned(caller, name)
        self.store.set_disabled(principal.id, disabled)
        self._audit_change(
            caller, "principal.disable" if disabled else "principal.enable", [(name, "ok")]
        )

    def set_device_entities(self, caller: Caller, name: str, entity_ids: Sequence[str]) -> None:
        """Replace the entities a device principal feeds in the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        principal = self._find(caller, name)
        self.store.set_device_entities(principal.id, caller.tenant, entity_ids)
        self._audit_change(caller, "device.entities", [(name, "ok")])

    # -- API keys -------------------------------------------------------------------------------

    def create_key(
        self,
        caller: Caller,
        name: str,
        roles: Collection[str],
        entity_ids: Sequence[str] = (),
    ) -> CreatedKey:
        """Make an API key for a service or device principal (created when new)."""
        require(caller, Permission.ADMINISTER)
        parsed = parse_roles(roles)
        if entity_ids and Role.DEVICE not in parsed:
            raise BadRequestData("entity ids are for device keys: add the device role")
        if Role.DEVICE in parsed and not entity_ids:
            raise BadRequestData("a device key needs the ids of the entities it feeds")
        existing = self.store.principal_by_name(name)
        if existing is None:
            kind = PrincipalKind.DEVICE if Role.DEVICE in parsed else PrincipalKind.SERVICE
            principal = self._create(caller, name, kind, parsed)
        else:
            principal = self._owned(caller, name)
            if principal.kind == PrincipalKind.USER:
                raise AlreadyExists(f"{name} is a user; keys are for services and devices")
            for role in sorted(parsed):
                self.store.grant(principal.id, caller.tenant, role.value)
        if entity_ids:
            self.store.set_device_entities(principal.id, caller.tenant, entity_ids)
        made = keys.new_key()
        self.store.add_key(ApiKeyRecord(made.prefix, principal.id, made.key_hash, self._now()))
        self._audit_change(caller, "key.create", [(made.prefix, "ok")])
        return CreatedKey(made.key, made.prefix, self._view(principal, caller.tenant))

    def keys(self, caller: Caller) -> list[KeyView]:
        """Return the keys of every principal with a role in the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        return [
            KeyView(key.prefix, principal.name, key.created_at, key.revoked_at)
            for principal, _ in self._members(caller)
            for key in self.store.keys_of(principal.id)
        ]

    def revoke_key(self, caller: Caller, prefix: str) -> None:
        """Revoke a key of a principal of the caller's tenant."""
        require(caller, Permission.ADMINISTER)
        record = self.store.key_by_prefix(prefix)
        principal = self.store.principal_by_id(record.principal_id) if record else None
        if record is None or principal is None:
            raise ResourceNotFound(f"no key {prefix} in this tenant")
        self._owned(caller, principal.name)
        self.store.revoke_key(prefix, self._now())
        self._audit_change(caller, "key.revoke", [(prefix, "ok")])

    # -- agency shares and type marks -----------------------------------------------------------

    def share(
        self,
        caller: Caller,
        agency: str,
        expires_at: datetime,
        *,
        entity_id: str | None = None,
        entity_type: str | None = None,
    ) -> ShareRecord:
        """Let an agency read one entity, or every entity of one type, until `expires_at`."""
        require(caller, Permission.ADMINISTER)
        if (entity_id is None) == (entity_type is None):
            raise BadRequestData("share either one entity id or one entity type")
        principal = self._find(caller, agency)
        if Role.AGENCY.value not in self.store.roles(principal.id, caller.tenant):
            raise BadRequestData(f"{agency} has no agency role in this tenant")
        if expires_at <= self.access.clock.now():
            raise BadRequestData("a share must expire in the future")
        share = ShareRecord(
            id=secrets.token_hex(8),
            tenant=caller.tenant,
            principal_id=principal.id,
            entity_id=entity_id,
            entity_type=entity_type,
            expires_at=isoformat(expires_at),
            created_at=self._now(),
            created_by=caller.subject,
        )
        self.store.add_share(share)
        self._audit_change(caller, "share.add", [(f"{agency}:{entity_id or entity_type}", "ok")])
        return share

    def shares(self, caller: Caller) -> list[tuple[ShareRecord, str]]:
        """Return the agency shares of the caller's tenant, each with the agency's name."""
        require(caller, Permission.ADMINISTER)
        found: list[tuple[ShareRecord, str]] = []
        for share in self.store.shares(caller.tenant):
            principal = self.store.principal_by_id(share.principal_id)
            found.append((share, principal.name if principal is not None else ""))
        return found

    def unshare(self, caller: Caller, share_id: str) -> None:
        """Withdraw an agency share."""
        require(caller, Permission.ADMINISTER)
        if not self.store.delete_share(caller.tenant, share_id):
            raise ResourceNotFound(f"no share {share_id} in this tenant")
        self._audit_change(caller, "share.delete", [(share_id, "ok")])

    def marked_types(self, caller: Caller, mark: str) -> frozenset[str]:
        """Return the entity types of the caller's tenant marked public or restricted."""
        require(caller, Permission.ADMINISTER)
        _check_mark(mark)
        return self.store.marked_types(caller.tenant, mark)

    def mark_type(self, caller: Caller, type_iri: str, mark: str, *, on: bool = True) -> None:
        """Mark (or unmark) an entity type of the caller's tenant public or restricted."""
        require(caller, Permission.ADMINISTER)
        _check_mark(mark)
        if on:
            self.store.mark_type(caller.tenant, type_iri, mark)
        else:
            self.store.unmark_type(caller.tenant, type_iri, mark)
        self.access.forget_marks(caller.tenant)
        action = f"type.{mark}" if on else f"type.{mark}.remove"
        self._audit_change(caller, action, [(type_iri, "ok")])

    def audit(self, caller: Caller, query: AuditFilter) -> list[AuditRecord]:
        """Return audit records of the caller's tenant."""
        require(caller, Permission.READ_AUDIT)
        if query.tenant != caller.tenant:
            query = AuditFilter(
                caller.tenant,
                query.since,
                query.until,
                query.principal,
                query.limit,
                query.after_seq,
            )
        return self.store.audit(query)


def _check_mark(mark: str) -> None:
    if mark not in MARKS:
        raise BadRequestData(f"a type mark is {' or '.join(MARKS)}, not {mark!r}")
