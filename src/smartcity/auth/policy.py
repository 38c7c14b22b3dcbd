"""Who may do what: the permission table per role, write rules and read visibility.

Every service checks here, whatever calls it (HTTP, CLI, simulator): `require` for an
operation, `require_write` / `may_write` per entity, and `AccessControl.visibility` for what a
reader may see (the store filters queries by it, so counts and pages leak nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.core.clock import Clock, isoformat
from smartcity.core.entity import StoredEntity
from smartcity.core.errors import Forbidden, Unauthorized
from smartcity.storage.accounts import AccountStore, AuditRecord
from smartcity.storage.base import EVERYTHING, Visibility


class Permission(StrEnum):
    """An operation a role may be allowed."""

    READ_ENTITIES = "read-entities"
    """Read entities, within the caller's visibility."""
    WRITE_ENTITIES = "write-entities"
    """Create, change and delete entities (a device: only its own)."""
    READ_HISTORY = "read-history"
    """Read temporal history, within the caller's visibility."""
    WRITE_HISTORY = "write-history"
    """Add or delete temporal history (a device: only of its own entities)."""
    MANAGE_SUBSCRIPTIONS = "manage-subscriptions"
    """Create, change and delete subscriptions (notifications within the visibility)."""
    MANAGE_CONTEXTS = "manage-contexts"
    """Add and delete stored @contexts (/jsonldContexts)."""
    ADMINISTER = "administer"
    """Manage principals, roles, keys, agency shares and public or restricted types."""
    READ_AUDIT = "read-audit"
    """Read the audit log."""
    READ_DEVICES = "read-devices"
    """Read the device registry and devices' commands (never their keys)."""
    MANAGE_DEVICES = "manage-devices"
    """Register, change and delete devices (IoT agent provisioning)."""
    COMMAND_DEVICES = "command-devices"
    """Send commands to devices (dim a streetlight, open a barrier)."""
    READ_DEAD_LETTERS = "read-dead-letters"
    """List and show the input ingestion refused (dead letters), with its raw payload."""
    MANAGE_DEAD_LETTERS = "manage-dead-letters"
    """Replay and discard dead letters."""
    CONTROL_SIMULATION = "control-simulation"
    """Start, stop, pause and jump the district simulator (where it is enabled)."""
    POST_PARKING_TRANSACTIONS = "post-parking-transactions"
    """Post parking entries, exits and top-ups (a terminal: only for its granted lots)."""
    READ_PARKING_REVENUE = "read-parking-revenue"
    """See parking sessions, receipts, revenue and settlements (an operator: its own lots)."""
    MANAGE_PARKING_PAYMENTS = "manage-parking-payments"
    """Refund, settle and reconcile parking payments (an operator: its own lots)."""
    ADMINISTER_PARKING_PAYMENTS = "administer-parking-payments"
    """Register lots and their operators, issue cards, grant terminals and operators lots."""
    RESERVE_PARKING = "reserve-parking"
    """Reserve a shared parking space; see and cancel one's own reservations (with a
    credential: the public role of an anonymous caller is not enough)."""
    MANAGE_RESERVATIONS = "manage-reservations"
    """See and cancel everyone's parking reservations, check cars in."""
    READ_RULES = "read-rules"
    """Read convergence-event rules, their firings and metrics; validate and backtest rules."""
    MANAGE_RULES = "manage-rules"
    """Create, change, enable, disable and delete convergence-event rules."""
    READ_INCIDENTS = "read-incidents"
    """List and read incidents and their timelines (an agency: only those shared with it)."""
    MANAGE_INCIDENTS = "manage-incidents"
    """Open incidents, move them through their lifecycle, assign, comment, tick SOP steps."""
    REPORT_INCIDENTS = "report-incidents"
    """Report an incident as a partner agency (a 112 or 119 report)."""
    SHARE_VIDEO = "share-video"
    """List the cameras near an incident and share them with an agency for a limited time."""
    VIEW_VIDEO = "view-video"
    """Get signed links to cameras' video (an agency: only cameras shared with it)."""


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {
            Permission.READ_ENTITIES,
            Permission.WRITE_ENTITIES,
            Permission.READ_HISTORY,
            Permission.WRITE_HISTORY,
            Permission.MANAGE_SUBSCRIPTIONS,
            Permission.MANAGE_CONTEXTS,
            Permission.READ_DEVICES,
            Permission.MANAGE_DEVICES,
            Permission.COMMAND_DEVICES,
            Permission.READ_DEAD_LETTERS,
            Permission.MANAGE_DEAD_LETTERS,
            Permission.CONTROL_SIMULATION,
            Permission.READ_PARKING_REVENUE,
            Permission.MANAGE_PARKING_PAYMENTS,
            Permission.RESERVE_PARKING,
            Permission.MANAGE_RESERVATIONS,
            Permission.READ_RULES,
            Permission.MANAGE_RULES,
            Permission.READ_INCIDENTS,
            Permission.MANAGE_INCIDENTS,
            Permission.REPORT_INCIDENTS,
            Permission.SHARE_VIDEO,
            Permission.VIEW_VIDEO,
        }
    ),
    Role.ANALYST: frozenset(
        {
            Permission.READ_ENTITIES,
            Permission.READ_HISTORY,
            Permission.MANAGE_SUBSCRIPTIONS,
            Permission.READ_DEVICES,
            Permission.READ_DEAD_LETTERS,
            Permission.READ_RULES,
            Permission.READ_INCIDENTS,
        }
    ),
    Role.AGENCY: frozenset(
        {
            Permission.READ_ENTITIES,
            Permission.READ_HISTORY,
            Permission.READ_INCIDENTS,
            Permission.REPORT_INCIDENTS,
            Permission.VIEW_VIDEO,
        }
    ),
    Role.DEVICE: frozenset(
        {
            Permission.READ_ENTITIES,
            Permission.WRITE_ENTITIES,
            Permission.WRITE_HISTORY,
        }
    ),
    Role.PARKING_TERMINAL: frozenset(
        {Permission.READ_ENTITIES, Permission.POST_PARKING_TRANSACTIONS}
    ),
    Role.PARKING_OPERATOR: frozenset(
        {
            Permission.READ_ENTITIES,
            Permission.READ_PARKING_REVENUE,
            Permission.MANAGE_PARKING_PAYMENTS,
        }
    ),
    Role.PUBLIC: frozenset({Permission.READ_ENTITIES, Permission.RESERVE_PARKING}),
}
"""What each role may do in its tenant; a principal with several roles may do the union."""

FULL_READERS = (Role.ADMIN, Role.OPERATOR, Role.ANALYST)
"""Roles that see every entity of their tenant."""
FULL_WRITERS = (Role.ADMIN, Role.OPERATOR)
"""Roles that may write every entity of their tenant (devices write only their own)."""

PUBLIC_MARK = "public"
RESTRICTED_MARK = "restricted"


def allowed(caller: Caller, permission: Permission) -> bool:
    """Tell whether one of the caller's roles grants a permission."""
    return any(permission in PERMISSIONS[role] for role in caller.roles)


def denied(caller: Caller, what: str) -> Unauthorized | Forbidden:
    """Return the error for a refused operation: 401 without a credential, else 403."""
    if not caller.authenticated:
        return Unauthorized(f"{what} needs a credential (a bearer token or an API key)")
    return Forbidden(f"{caller.subject} may not {what} in this tenant")


def require(caller: Caller, permission: Permission) -> None:
    """Raise Unauthorized (no credential) or Forbidden unless the caller has the permission."""
    if not allowed(caller, permission):
        raise denied(caller, permission.value.replace("-", " "))


def may_write(caller: Caller, entity_id: str) -> bool:
    """Tell whether the caller may create, change or delete this entity."""
    if caller.has(*FULL_WRITERS):
        return True
    return caller.has(Role.DEVICE) and entity_id in caller.entity_ids


def require_write(caller: Caller, entity_id: str) -> None:
    """Raise Unauthorized or Forbidden unless the caller may write this entity.

    The answer never depends on whether the entity exists, so a refusal tells nothing.
    """
    if not may_write(caller, entity_id):
        raise denied(caller, f"write entity {entity_id}")


def require_any_write(caller: Caller) -> None:
    """Raise unless the caller may write at least some entities (before a batch)."""
    require(caller, Permission.WRITE_ENTITIES)


class AccessControl:
    """Per-tenant access data: public and restricted types, agency shares; and the audit log."""

    MARKS_TTL = 2.0
    """Seconds a tenant's type marks are reused before they are read again."""

    def __init__(self, accounts: AccountStore, clock: Clock) -> None:
        self.accounts = accounts
        self.clock = clock
        self._marks: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def marked_types(self, tenant: str, mark: str) -> frozenset[str]:
        """Return a tenant's types with a mark (cached for a moment: every read asks)."""
        now = time.monotonic()
        with self._lock:
            cached = self._marks.get((tenant, mark))
        if cached is not None and now - cached[0] < self.MARKS_TTL:
            return cached[1]
        types = self.accounts.marked_types(tenant, mark)
        with self._lock:
            self._marks[(tenant, mark)] = (now, types)
        return types

    def principal_may(self, tenant: str, principal_id: str, permission: Permission) -> bool:
        """Tell whether a stored principal may still do this in a tenant (enabled, with a role
        that allows it). '' is the platform itself, which may do everything."""
        if not principal_id:
            return True
        access = self.accounts.access(principal_id, tenant)
        if access is None or access.principal.disabled:
            return False
        known = {role.value: role for role in Role}
        roles = [known[name] for name in access.roles if name in known]
        return any(permission in PERMISSIONS[role] for role in roles)

    def forget_marks(self, tenant: str) -> None:
        """Drop the cached marks of a tenant (after they changed here)."""
        with self._lock:
            for mark in (PUBLIC_MARK, RESTRICTED_MARK):
                self._marks.pop((tenant, mark), None)

    def visibility(self, caller: Caller) -> Visibility:
        """Return what the caller may read in its tenant.

        Full readers see everything; everyone sees the public types; an agency also sees what
        is shared with it and has not expired; a device also sees the entities it feeds.
        """
        if caller.has(*FULL_READERS):
            return EVERYTHING
        if not allowed(caller, Permission.READ_ENTITIES):
            return Visibility.only()
        types = set(self.marked_types(caller.tenant, PUBLIC_MARK))
        ids: set[str] = set()
        if caller.has(Role.AGENCY) and caller.principal_id:
            now = isoformat(self.clock.now())
            for share in self.accounts.shares(caller.tenant, caller.principal_id):
                if share.expires_at <= now:
                    continue
                if share.entity_type:
                    types.add(share.entity_type)
                if share.entity_id:
                    ids.add(share.entity_id)
        if caller.has(Role.DEVICE):
            ids.update(caller.entity_ids)
        return Visibility.only(types, ids)

    def _records(
        self, caller: Caller, action: str, targets: Iterable[tuple[str, str]]
    ) -> list[AuditRecord]:
        at = isoformat(self.clock.now())
        pairs = list(targets)
        if caller.kind is PrincipalKind.SYSTEM and len(pairs) > 1:
            # The platform's own batches (ingestion, rules) run at thousands of entities a
            # second; the change log and the history already say what changed. One record per
            # outcome says that the platform did it, without a row per entity.
            return [
                AuditRecord(at, caller.tenant, caller.subject, action, _batch_target(ids), outcome)
                for outcome, ids in _by_outcome(pairs).items()
            ]
        return [
            AuditRecord(at, caller.tenant, caller.subject, action, target, outcome)
            for target, outcome in pairs
        ]

    def prune_audit(self, keep: timedelta, chunk: int = 10_000) -> int:
        """Delete audit records older than `keep`, in chunks; return how many went."""
        cutoff = isoformat(self.clock.now() - keep)
        deleted = 0
        while True:
            count = self.accounts.prune_audit(cutoff, chunk)
            deleted += count
            if count < chunk:
                return deleted

    def record(self, caller: Caller, action: str, targets: Iterable[tuple[str, str]]) -> None:
        """Append one audit record per (target, outcome) of an action by the caller."""
        self.accounts.record_audit(self._records(caller, action, targets))

    def record_in(
        self, cursor: Any, caller: Caller, action: str, targets: Iterable[tuple[str, str]]
    ) -> None:
        """Append audit records inside a write transaction (committed with the write or not)."""
        self.accounts.record_audit_in(cursor, self._records(caller, action, targets))

    def record_reads(self, caller: Caller, action: str, entities: Sequence[StoredEntity]) -> None:
        """Audit the reading of every entity of a restricted type among those returned."""
        if not entities:
            return
        restricted = self.marked_types(caller.tenant, RESTRICTED_MARK)
        if not restricted:
            return
        read = [(e.id, "ok") for e in entities if not restricted.isdisjoint(e.types)]
        if read:
            self.record(caller, action, read)


def _by_outcome(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for target, outcome in pairs:
        grouped.setdefault(outcome, []).append(target)
    return grouped


def _batch_target(ids: Sequence[str]) -> str:
    """Name a batch's targets in one audit record: how many, and the first and last."""
    if len(ids) == 1:
        return ids[0]
    return f"{len(ids)} entities: {ids[0]} .. {ids[-1]}"
