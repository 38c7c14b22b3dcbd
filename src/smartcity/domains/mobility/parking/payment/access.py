"""Which lots a caller may post for or see: grants of lots to terminals and operators."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from smartcity.auth.policy import AccessControl, Permission, denied, require
from smartcity.auth.principal import Caller, Role
from smartcity.core.errors import BadRequestData, ResourceNotFound
from smartcity.storage.sqlbase import SqlEntityStore

LOT: Final = "lot"
OPERATOR: Final = "operator"
EVERY_LOT: Final = (Role.ADMIN, Role.OPERATOR)
"""Roles that act on every lot of their tenant (the city office, the platform itself)."""


class PaymentAccess:
    """Grants per tenant: a terminal's lots, an operator principal's operators."""

    def __init__(self, store: SqlEntityStore, access: AccessControl) -> None:
        self._store = store
        self._access = access
        self._p = store.dialect.placeholder

    def grant(
        self, caller: Caller, principal_name: str, scope: str, scope_ids: Collection[str]
    ) -> None:
        """Grant a principal lots (a terminal) or operators (an operator's staff)."""
        require(caller, Permission.ADMINISTER_PARKING_PAYMENTS)
        if scope not in (LOT, OPERATOR):
            raise BadRequestData(f"scope must be {LOT!r} or {OPERATOR!r}, not {scope!r}")
        principal = self._access.accounts.principal_by_name(principal_name)
        if principal is None:
            raise ResourceNotFound(f"no principal {principal_name}")
        p = self._p
        with self._store.writing() as cursor:
            for scope_id in sorted(set(scope_ids)):
                cursor.execute(
                    "INSERT INTO parking_pay_grants (tenant, principal_id, scope, scope_id) "
                    f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING",
                    [caller.tenant, principal.id, scope, scope_id],
                )

    def granted(self, caller: Caller, scope: str) -> frozenset[str]:
        """Return the ids of a scope granted to the caller's principal in its tenant."""
        if not caller.principal_id:
            return frozenset()
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT scope_id FROM parking_pay_grants "
                f"WHERE tenant = {p} AND principal_id = {p} AND scope = {p}",
                [caller.tenant, caller.principal_id, scope],
            )
            return frozenset(str(row[0]) for row in cursor.fetchall())

    def terminal_lots(self, caller: Caller) -> frozenset[str] | None:
        """Return the lots a terminal may post for (None: every lot)."""
        require(caller, Permission.POST_PARKING_TRANSACTIONS)
        if caller.has(*EVERY_LOT) or not caller.principal_id:
            return None
        return self.granted(caller, LOT)

    def operators(self, caller: Caller, permission: Permission) -> frozenset[str] | None:
        """Return the operators whose lots the caller may see or manage (None: all)."""
        require(caller, permission)
        if caller.has(*EVERY_LOT) or not caller.principal_id:
            return None
        return self.granted(caller, OPERATOR)

    def require_operator(self, caller: Caller, operator_id: str, permission: Permission) -> None:
        """Raise Forbidden unless the caller may act for this operator."""
        allowed = self.operators(caller, permission)
        if allowed is not None and operator_id not in allowed:
            raise denied(caller, f"{permission.value.replace('-', ' ')} of operator {operator_id}")
