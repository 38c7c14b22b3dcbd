"""Tables of the temporal history, per SQL dialect.

`history_instances` holds one row per attribute instance ever accepted (and one per deletion),
with its times as microseconds since the epoch and its number (if any) in `num`, so that a time
window of one entity's attribute is one range of the `(hk, attr, observed_at, ...)` key and an
aggregation is one GROUP BY over it. On SQLite the table is clustered on that key (WITHOUT
ROWID): one sensor's day is a few neighbouring pages, not one page per reading. Aggregations
read a narrow covering index instead of the rows (SQLite: `history_instances_values`;
PostgreSQL: the columns the primary key INCLUDEs, read by an index-only scan once vacuumed).
"""

from __future__ import annotations

from typing import Final

POSITION = "history"
"""The name of the history writer's row in `history_position` (its place in the change log)."""

SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS history_entities (
    hk INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    deleted_at INTEGER,
    UNIQUE (tenant, entity_id)
);
CREATE TABLE IF NOT EXISTS history_types (
    hk INTEGER NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (hk, type)
);
CREATE INDEX IF NOT EXISTS history_types_type ON history_types (type, hk);
CREATE TABLE IF NOT EXISTS history_instances (
    hk INTEGER NOT NULL,
    attr TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    observed_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    deleted_at INTEGER,
    num REAL,
    value TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (hk, attr, observed_at, instance_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_instances_values
    ON history_instances (hk, attr, observed_at, dataset_id, kind, deleted_at, num);
CREATE TABLE IF NOT EXISTS history_position (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
INSERT INTO history_position (name, seq) VALUES ('history', 0) ON CONFLICT (name) DO NOTHING
"""

POSTGRES_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS history_entities (
    hk BIGSERIAL PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    entity_id TEXT COLLATE "C" NOT NULL,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    deleted_at BIGINT,
    UNIQUE (tenant, entity_id)
);
CREATE TABLE IF NOT EXISTS history_types (
    hk BIGINT NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (hk, type)
);
CREATE INDEX IF NOT EXISTS history_types_type ON history_types (type, hk);
CREATE TABLE IF NOT EXISTS history_instances (
    hk BIGINT NOT NULL,
    attr TEXT COLLATE "C" NOT NULL,
    dataset_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    instance_id TEXT COLLATE "C" NOT NULL,
    observed_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    deleted_at BIGINT,
    num DOUBLE PRECISION,
    value TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (hk, attr, observed_at, instance_id) INCLUDE (dataset_id, kind, deleted_at, num)
);
CREATE TABLE IF NOT EXISTS history_position (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO history_position (name, seq) VALUES ('history', 0) ON CONFLICT (name) DO NOTHING
"""

# Serializes the creation of these tables when several processes start on one database.
POSTGRES_DDL_LOCK: Final = 0x736D68697374  # "smhist"

INSTANCE_COLUMNS: Final = (
    "hk, attr, dataset_id, kind, instance_id, observed_at, created_at, modified_at, deleted_at, "
    "num, value, doc"
)


def statements(dialect: str) -> list[str]:
    """Return the DDL statements of the history tables for a dialect ("sqlite"/"postgresql")."""
    script = SQLITE_SCHEMA if dialect == "sqlite" else POSTGRES_SCHEMA
    return [part.strip() for part in script.split(";") if part.strip()]
