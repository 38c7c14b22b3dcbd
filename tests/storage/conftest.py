"""The store under test: one SQLite file, or one fresh schema of the test PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from smartcity.storage.base import EntityStore
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlite import SqliteEntityStore

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RequireService = Callable[[str, Callable[[], object]], None]


def postgres_url() -> str:
    """Return the URL of the test PostgreSQL server."""
    return os.environ.get("SMARTCITY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _connect_postgres() -> None:
    with psycopg.connect(postgres_url(), connect_timeout=3) as connection:
        connection.execute("SELECT 1")


@pytest.fixture
def postgres_schema(require_service: RequireService) -> Iterator[str]:
    """Yield the name of a fresh schema, dropped with all it holds after the test."""
    require_service("PostgreSQL", _connect_postgres)
    schema = f"test_{uuid.uuid4().hex}"
    yield schema
    with psycopg.connect(postgres_url(), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EntityStore]:
    """Yield an empty store of each backend."""
    opened: EntityStore
    if request.param == "sqlite":
        opened = SqliteEntityStore(tmp_path / "entities.db")
    else:
        schema: str = request.getfixturevalue("postgres_schema")
        opened = PostgresEntityStore(postgres_url(), schema=schema, max_size=8)
    yield opened
    opened.close()
