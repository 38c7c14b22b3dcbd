"""AccountStore on the entity store's SQL database (SQLite or PostgreSQL), on its connections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartcity.core.errors import AlreadyExists
from smartcity.storage.accounts import (
    ApiKeyRecord,
    AuditFilter,
    AuditRecord,
    PrincipalAccess,
    PrincipalRecord,
    ShareRecord,
)
from smartcity.storage.sqlbase import Cursor, SqlEntityStore

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    password_hash TEXT,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS memberships (
    principal_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (principal_id, tenant, role)
);
CREATE INDEX IF NOT EXISTS memberships_tenant ON memberships (tenant);
CREATE TABLE IF NOT EXISTS device_entities (
    principal_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (principal_id, tenant, entity_id)
);
CREATE TABLE IF NOT EXISTS api_keys (
    prefix TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_principal ON api_keys (principal_id);
CREATE TABLE IF NOT EXISTS agency_shares (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    entity_id TEXT,
    entity_type TEXT,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agency_shares_principal ON agency_shares (tenant, principal_id);
CREATE TABLE IF NOT EXISTS entity_type_marks (
    tenant TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    mark TEXT NOT NULL,
    PRIMARY KEY (tenant, entity_type, mark)
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    tenant TEXT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_tenant_at ON audit_log (tenant, at);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE TABLE IF NOT EXISTS login_failures (
    name TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_name_at ON login_failures (name, at);
CREATE INDEX IF NOT EXISTS login_failures_at ON login_failures (at);
"""

POSTGRES_SCHEMA = SQLITE_SCHEMA.replace(
    "seq INTEGER PRIMARY KEY AUTOINCREMENT", "seq BIGSERIAL PRIMARY KEY"
).replace("TEXT", 'TEXT COLLATE "C"')
# Serializes the schema creation when several processes start on one PostgreSQL database.
_POSTGRES_DDL_LOCK = 0x736D61636374  # "smacct"


class SqlAccountStore:
    """AccountStore in the entity store's database (SQLite or PostgreSQL), on its connections."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        schema = POSTGRES_SCHEMA if store.dialect.name == "postgresql" else SQLITE_SCHEMA
        with store.writing() as cursor:
            if store.dialect.name == "postgresql":
                cursor.execute(f"SELECT pg_advisory_xact_lock({_POSTGRES_DDL_LOCK})")
            for statement in schema.split(";"):
                if statement.strip():
                    cursor.execute(statement)

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        with self._store.writing() as cursor:
            cursor.execute(sql.replace("?", self._p), list(params))
            return int(cursor.rowcount or 0)

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._store.reading() as cursor:
            cursor.execute(sql.replace("?", self._p), list(params))
            return list(cursor.fetchall())

    # -- principals -----------------------------------------------------------------------------

    def add_principal(self, principal: PrincipalRecord) -> None:
        """Store a new principal; AlreadyExists if the name is taken."""
        if self.principal_by_name(principal.name) is not None:
            raise AlreadyExists(f"a principal named {principal.name!r} exists already")
        self._write(
            "INSERT INTO principals (id, name, kind, password_hash, created_at, disabled) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                principal.id,
                principal.name,
                principal.kind,
                principal.password_hash,
                principal.created_at,
                int(principal.disabled),
            ],
        )

    def _principal(self, column: str, value: str) -> PrincipalRecord | None:
        rows = self._read(
            "SELECT id, name, kind, created_at, password_hash, disabled FROM principals "
            f"WHERE {column} = ?",
            [value],
        )
        return _principal_from_row(rows[0]) if rows else None

    def principal_by_name(self, name: str) -> PrincipalRecord | None:
        """Return the principal with this name, if any."""
        return self._principal("name", name)

    def principal_by_id(self, principal_id: str) -> PrincipalRecord | None:
        """Return the principal with this id, if any."""
        return self._principal("id", principal_id)

    def set_password_hash(self, principal_id: str, password_hash: str) -> None:
        """Replace a principal's password hash."""
        self._write(
            "UPDATE principals SET password_hash = ? WHERE id = ?", [password_hash, principal_id]
        )

    def set_disabled(self, principal_id: str, disabled: bool) -> None:
        """Disable (or enable again) a principal: a disabled one cannot authenticate."""
        self._write(
            "UPDATE principals SET disabled = ? WHERE id = ?", [int(disabled), principal_id]
        )

    def principals_in(self, tenant: str) -> list[tuple[PrincipalRecord, frozenset[str]]]:
        """Return every principal with a role in the tenant, with its roles there, by name."""
        rows = self._read(
            "SELECT p.id, p.name, p.kind, p.created_at, p.password_hash, p.disabled, m.role "
            "FROM principals p JOIN memberships m ON m.principal_id = p.id "
            "WHERE m.tenant = ? ORDER BY p.name, m.role",
            [tenant],
        )
        found: dict[str, tuple[PrincipalRecord, set[str]]] = {}
        for row in rows:
            entry = found.setdefault(row[0], (_principal_from_row(row[:6]), set()))
            entry[1].add(row[6])
        return [(principal, frozenset(roles)) for principal, roles in found.values()]

    def access(self, principal_id: str, tenant: str) -> PrincipalAccess | None:
        """Return a principal with its roles and entities in a tenant, in one read."""
        with self._store.reading() as cursor:
            return self._access(cursor, principal_id, tenant)

    def access_by_key(
        self, prefix: str, tenant: str
    ) -> tuple[ApiKeyRecord, PrincipalAccess] | None:
        """Return a key and its principal's access in a tenant, in one read."""
        p = self._p
        with self._store.reading() as cursor:
            cursor.execute(
                "SELECT prefix, principal_id, key_hash, created_at, revoked_at FROM api_keys "
                f"WHERE prefix = {p}",
                [prefix],
            )
            row = cursor.fetchone()
            if row is None:
                return None
            key = ApiKeyRecord(*row)
            access = self._access(cursor, key.principal_id, tenant)
        return (key, access) if access is not None else None

    def _access(self, cursor: Cursor, principal_id: str, tenant: str) -> PrincipalAccess | None:
        p = self._p
        cursor.execute(
            "SELECT id, name, kind, created_at, password_hash, disabled FROM principals "
            f"WHERE id = {p}",
            [principal_id],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            f"SELECT role FROM memberships WHERE principal_id = {p} AND tenant = {p}",
            [principal_id, tenant],
        )
        roles = frozenset(r[0] for r in cursor.fetchall())
        entity_ids: frozenset[str] = frozenset()
        if "device" in roles:
            cursor.execute(
                f"SELECT entity_id FROM device_entities WHERE principal_id = {p} AND tenant = {p}",
                [principal_id, tenant],
            )
            entity_ids = frozenset(r[0] for r in cursor.fetchall())
        return PrincipalAccess(_principal_from_row(row), roles, entity_ids)

    # -- roles and device entities --------------------------------------------------------------

    def grant(self, principal_id: str, tenant: str, role: str) -> None:
        """Give a principal a role in a tenant (nothing happens if it has it already)."""
        self._write(
            "INSERT INTO memberships (principal_id, tenant, role) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [principal_id, tenant, role],
        )

    def revoke(self, principal_id: str, tenant: str, role: str | None = None) -> None:
        """Take one role (or every role when None) of a principal in a tenant away."""
        if role is None:
            self._write(
                "DELETE FROM memberships WHERE principal_id = ? AND tenant = ?",
                [principal_id, tenant],
            )
        else:
            self._write(
                "DELETE FROM memberships WHERE principal_id = ? AND tenant = ? AND role = ?",
                [principal_id, tenant, role],
            )

    def roles(self, principal_id: str, tenant: str) -> frozenset[str]:
        """Return the roles a principal holds in a tenant."""
        rows = self._read(
            "SELECT role FROM memberships WHERE principal_id = ? AND tenant = ?",
            [principal_id, tenant],
        )
        return frozenset(row[0] for row in rows)

    def tenants_of(self, principal_id: str) -> frozenset[str]:
        """Return every tenant where a principal holds a role."""
        rows = self._read(
            "SELECT DISTINCT tenant FROM memberships WHERE principal_id = ?", [principal_id]
        )
        return frozenset(row[0] for row in rows)

    def set_device_entities(self, principal_id: str, tenant: str, ids: Sequence[str]) -> None:
        """Replace the entity ids a device principal feeds in a tenant."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM device_entities WHERE principal_id = {p} AND tenant = {p}",
                [principal_id, tenant],
            )
            cursor.executemany(
                "INSERT INTO device_entities (principal_id, tenant, entity_id) "
                f"VALUES ({p}, {p}, {p})",
                [(principal_id, tenant, entity_id) for entity_id in dict.fromkeys(ids)],
            )

    def device_entities(self, principal_id: str, tenant: str) -> frozenset[str]:
        """Return the entity ids a device principal feeds in a tenant."""
        rows = self._read(
            "SELECT entity_id FROM device_entities WHERE principal_id = ? AND tenant = ?",
            [principal_id, tenant],
        )
        return frozenset(row[0] for row in rows)

    # -- API keys -------------------------------------------------------------------------------

    def add_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key (its hash)."""
        self._write(
            "INSERT INTO api_keys (prefix, principal_id, key_hash, created_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [key.prefix, key.principal_id, key.key_hash, key.created_at, key.revoked_at],
        )

    def key_by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        """Return the key with this public prefix, if any."""
        rows = self._read(
            "SELECT prefix, principal_id, key_hash, created_at, revoked_at FROM api_keys "
            "WHERE prefix = ?",
            [prefix],
        )
        return ApiKeyRecord(*rows[0]) if rows else None

    def keys_of(self, principal_id: str) -> list[ApiKeyRecord]:
        """Return every key of a principal, oldest first."""
        rows = self._read(
            "SELECT prefix, principal_id, key_hash, created_at, revoked_at FROM api_keys "
            "WHERE principal_id = ? ORDER BY created_at, prefix",
            [principal_id],
        )
        return [ApiKeyRecord(*row) for row in rows]

    def revoke_key(self, prefix: str, at: str) -> None:
        """Mark a key revoked from `at` on."""
        self._write(
            "UPDATE api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
            [at, prefix],
        )

    # -- agency shares --------------------------------------------------------------------------

    def add_share(self, share: ShareRecord) -> None:
        """Store a grant to an agency."""
        self._write(
            "INSERT INTO agency_shares (id, tenant, principal_id, entity_id, entity_type, "
            "expires_at, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                share.id,
                share.tenant,
                share.principal_id,
                share.entity_id,
                share.entity_type,
                share.expires_at,
                share.created_at,
                share.created_by,
            ],
        )

    def shares(self, tenant: str, principal_id: str | None = None) -> list[ShareRecord]:
        """Return the grants of a tenant (of one agency when given), expired ones included."""
        sql = (
            "SELECT id, tenant, principal_id, entity_id, entity_type, expires_at, created_at, "
            "created_by FROM agency_shares WHERE tenant = ?"
        )
        params = [tenant]
        if principal_id is not None:
            sql += " AND principal_id = ?"
            params.append(principal_id)
        return [ShareRecord(*row) for row in self._read(sql + " ORDER BY created_at, id", params)]

    def delete_share(self, tenant: str, share_id: str) -> bool:
        """Delete a grant; tell whether there was one."""
        deleted = self._write(
            "DELETE FROM agency_shares WHERE tenant = ? AND id = ?", [tenant, share_id]
        )
        return deleted > 0

    # -- type marks -----------------------------------------------------------------------------

    def mark_type(self, tenant: str, entity_type: str, mark: str) -> None:
        """Mark an entity type of a tenant ('public' or 'restricted')."""
        self._write(
            "INSERT INTO entity_type_marks (tenant, entity_type, mark) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [tenant, entity_type, mark],
        )

    def unmark_type(self, tenant: str, entity_type: str, mark: str) -> None:
        """Remove a mark from an entity type of a tenant."""
        self._write(
            "DELETE FROM entity_type_marks WHERE tenant = ? AND entity_type = ? AND mark = ?",
            [tenant, entity_type, mark],
        )

    def marked_types(self, tenant: str, mark: str) -> frozenset[str]:
        """Return the entity types of a tenant that carry a mark."""
        rows = self._read(
            "SELECT entity_type FROM entity_type_marks WHERE tenant = ? AND mark = ?",
            [tenant, mark],
        )
        return frozenset(row[0] for row in rows)

    # -- audit log ------------------------------------------------------------------------------

    def record_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append records to the audit log."""
        if not records:
            return
        p = self._p
        with self._store.writing() as cursor:
            _insert_audit(cursor, p, records)

    def record_audit_in(self, cursor: Cursor, records: Sequence[AuditRecord]) -> None:
        """Append records to the audit log within a write transaction of the same database."""
        if records:
            _insert_audit(cursor, self._p, records)

    # -- failed logins (shared by every process on the database) ------------------------------

    def record_login_failure(self, name: str, at: str, forget_before: str) -> int:
        """Record a failed login for `name`; return its failures since `forget_before`.

        Failures older than `forget_before` (of every name) are deleted on the way, so the
        table holds one window's worth whatever names are tried.
        """
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(f"DELETE FROM login_failures WHERE at < {p}", [forget_before])
            cursor.execute(f"INSERT INTO login_failures (name, at) VALUES ({p}, {p})", [name, at])
            cursor.execute(
                f"SELECT COUNT(*) FROM login_failures WHERE name = {p} AND at >= {p}",
                [name, forget_before],
            )
            return int(cursor.fetchone()[0])

    def login_failures(self, name: str, since: str) -> int:
        """Return how many failed logins `name` had since `since`."""
        rows = self._read(
            "SELECT COUNT(*) FROM login_failures WHERE name = ? AND at >= ?", [name, since]
        )
        return int(rows[0][0])

    def clear_login_failures(self, name: str) -> None:
        """Forget the failed logins of `name` (after a successful one)."""
        with self._store.writing() as cursor:
            cursor.execute(f"DELETE FROM login_failures WHERE name = {self._p}", [name])

    def prune_audit(self, older_than: str, limit: int) -> int:
        """Delete up to `limit` of the oldest audit records made before `older_than`."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log "
                f"WHERE at < {p} ORDER BY at LIMIT {p})",
                [older_than, limit],
            )
            return int(max(cursor.rowcount, 0))

    def audit(self, query: AuditFilter) -> list[AuditRecord]:
        """Return audit records of one tenant, oldest first."""
        sql = (
            "SELECT at, tenant, principal, action, target, outcome, seq FROM audit_log "
            "WHERE tenant = ? AND seq > ?"
        )
        params: list[Any] = [query.tenant, query.after_seq]
        if query.since is not None:
            sql += " AND at >= ?"
            params.append(query.since)
        if query.until is not None:
            sql += " AND at < ?"
            params.append(query.until)
        if query.principal is not None:
            sql += " AND principal = ?"
            params.append(query.principal)
        sql += " ORDER BY seq LIMIT ?"
        params.append(query.limit)
        return [
            AuditRecord(at, tenant, principal, action, target, outcome, int(seq))
            for at, tenant, principal, action, target, outcome, seq in self._read(sql, params)
        ]


def _insert_audit(cursor: Cursor, p: str, records: Sequence[AuditRecord]) -> None:
    cursor.executemany(
        "INSERT INTO audit_log (at, tenant, principal, action, target, outcome) "
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
        [(r.at, r.tenant, r.principal, r.action, r.target, r.outcome) for r in records],
    )


def _principal_from_row(row: Sequence[Any]) -> PrincipalRecord:
    principal_id, name, kind, created_at, password_hash, disabled = row
    return PrincipalRecord(principal_id, name, kind, created_at, password_hash, bool(disabled))
