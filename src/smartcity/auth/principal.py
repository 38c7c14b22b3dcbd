"""Who is calling: the authenticated principal, acting in one tenant with its roles there."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """What a principal may do in a tenant."""

    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    AGENCY = "agency"
    DEVICE = "device"
    PUBLIC = "public"
    PARKING_TERMINAL = "parking-terminal"
    """A parking gate or payment terminal: posts transactions for the lots it is granted."""
    PARKING_OPERATOR = "parking-operator"
    """A lot operator (운영사): sees and settles only the lots it is granted."""


class PrincipalKind(StrEnum):
    """How a principal authenticates."""

    USER = "user"
    SERVICE = "service"
    DEVICE = "device"
    ANONYMOUS = "anonymous"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Caller:
    """One principal acting in one tenant: every service operation is asked on behalf of one."""

    subject: str
    tenant: str
    roles: frozenset[Role]
    kind: PrincipalKind = PrincipalKind.USER
    entity_ids: frozenset[str] = field(default_factory=frozenset)
    """For a device key: the entities it feeds (the only ones it may write)."""
    principal_id: str = ""
    """The stored principal's id ('' for the system and anonymous callers)."""

    @classmethod
    def system(cls, tenant: str = "") -> Caller:
        """The platform itself (seeding, workers): every role, in one tenant."""
        return cls("system", tenant, frozenset(Role), PrincipalKind.SYSTEM)

    @classmethod
    def anonymous(cls, tenant: str = "") -> Caller:
        """Someone without a credential: the public role only."""
        return cls("anonymous", tenant, frozenset({Role.PUBLIC}), PrincipalKind.ANONYMOUS)

    @property
    def authenticated(self) -> bool:
        """Tell whether the caller presented a valid credential (or is the platform itself)."""
        return self.kind != PrincipalKind.ANONYMOUS

    def has(self, *roles: Role) -> bool:
        """Tell whether the caller holds any of these roles."""
        return not self.roles.isdisjoint(roles)
