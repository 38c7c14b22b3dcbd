"""Authentication: log in with a password, and turn a bearer token or API key into a Caller."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta

import structlog

from smartcity.auth import keys, passwords
from smartcity.auth.policy import AccessControl
from smartcity.auth.principal import Caller, PrincipalKind, Role
from smartcity.auth.tokens import IssuedToken, TokenIssuer
from smartcity.core.clock import isoformat
from smartcity.core.errors import Unauthorized
from smartcity.storage.accounts import PrincipalAccess

LOGIN_FAILED = "wrong user name or password"
MAX_FAILED_LOGINS = 10
"""Failed logins for one name within FAILED_LOGIN_WINDOW before further attempts wait it out."""
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
CACHE_LIMIT = 10_000
log = structlog.get_logger(__name__)


class Authenticator:
    """Check credentials against the accounts store; every answer is a Caller in one tenant.

    What a credential grants in a tenant is kept for `cache_seconds` (a store read per request
    would cost more than the rest of a GET); a change made through this process forgets it at
    once, one made in another process is seen within `cache_seconds`.
    """

    def __init__(
        self, access: AccessControl, tokens: TokenIssuer, *, cache_seconds: float = 5.0
    ) -> None:
        self.access = access
        self.store = access.accounts
        self.tokens = tokens
        self.cache_seconds = cache_seconds
        self._callers: dict[tuple[str, str], tuple[float, Caller]] = {}
        self._callers_lock = threading.Lock()

    def _cached(self, kind: str, secret: str, tenant: str) -> tuple[tuple[str, str], Caller | None]:
        digest = hashlib.sha256(f"{kind}\x00{secret}".encode()).hexdigest()
        slot = (digest, tenant)
        with self._callers_lock:
            found = self._callers.get(slot)
        if found is not None and time.monotonic() < found[0]:
            return slot, found[1]
        return slot, None

    def _keep(self, slot: tuple[str, str], caller: Caller) -> Caller:
        if self.cache_seconds > 0:
            with self._callers_lock:
                if len(self._callers) >= CACHE_LIMIT:
                    self._callers.clear()
                self._callers[slot] = (time.monotonic() + self.cache_seconds, caller)
        return caller

    def forget_callers(self) -> None:
        """Drop every remembered credential (after roles, keys or principals changed)."""
        with self._callers_lock:
            self._callers.clear()

    def login(self, name: str, password: str) -> IssuedToken:
        """Return a bearer token for a user name and password; Unauthorized otherwise.

        After MAX_FAILED_LOGINS failures for one name within FAILED_LOGIN_WINDOW, further
        attempts fail without a check until the window has passed. Failures are kept in the
        database, so every server process on it counts the same attempts.
        """
        now = self.access.clock.now()
        window_start = isoformat(now - FAILED_LOGIN_WINDOW)
        if self.store.login_failures(name, window_start) >= MAX_FAILED_LOGINS:
            log.warning("login refused: too many failed attempts", name=name)
            raise Unauthorized("too many failed logins for this name; try again later")
        principal = self.store.principal_by_name(name)
        stored = principal.password_hash if principal is not None else None
        matches = passwords.verify_password(stored, password)
        if not matches or principal is None or principal.disabled:
            self.store.record_login_failure(name, isoformat(now), window_start)
            log.info("login failed", name=name)
            raise Unauthorized(LOGIN_FAILED)
        self.store.clear_login_failures(name)
        if stored is not None and passwords.needs_rehash(stored):
            self.store.set_password_hash(principal.id, passwords.hash_password(password))
        return self.tokens.issue(principal.id)

    def caller_for_token(self, token: str, tenant: str) -> Caller:
        """Return the caller a bearer token names, with its roles in the tenant."""
        principal_id = self.tokens.verify(token)  # signature and expiry: every time
        slot, cached = self._cached("principal", principal_id, tenant)
        if cached is not None:
            return cached
        access = self.store.access(principal_id, tenant)
        if access is None or access.principal.disabled:
            raise Unauthorized("the bearer token's principal no longer exists or is disabled")
        return self._keep(slot, _caller(access, tenant))

    def caller_for_principal(self, principal_id: str, tenant: str) -> Caller | None:
        """Return a principal's caller in a tenant as of now (None if gone or disabled).

        For work done later on a principal's behalf (notifications of its subscriptions): its
        roles and what it may see are read again, so a revoked role or share stops at once.
        """
        access = self.store.access(principal_id, tenant)
        if access is None or access.principal.disabled:
            return None
        return _caller(access, tenant)

    def caller_for_key(self, key: str, tenant: str) -> Caller:
        """Return the caller an API key belongs to, with its roles in the tenant."""
        slot, cached = self._cached("key", key, tenant)
        if cached is not None:
            return cached
        prefix = keys.prefix_of(key)
        found = self.store.access_by_key(prefix, tenant) if prefix is not None else None
        if found is None or not keys.key_matches(key, found[0].key_hash):
            raise Unauthorized("the API key is not valid")
        record, access = found
        if record.revoked_at is not None:
            raise Unauthorized("the API key has been revoked")
        if access.principal.disabled:
            raise Unauthorized("the API key's principal is disabled")
        return self._keep(slot, _caller(access, tenant))


def _caller(access: PrincipalAccess, tenant: str) -> Caller:
    """Build the Caller of a principal in a tenant; no role there reads as the public."""
    roles = frozenset(Role(name) for name in access.roles)
    principal = access.principal
    return Caller(
        principal.name,
        tenant,
        roles or frozenset({Role.PUBLIC}),
        PrincipalKind(principal.kind),
        access.entity_ids if Role.DEVICE in roles else frozenset(),
        principal.id,
    )
