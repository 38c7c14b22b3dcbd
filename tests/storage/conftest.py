"""The store under test: one SQLite file, or one fresh schema of the test PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcity.storage.base import EntityStore
from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlite import SqliteEntityStore
from tests.conftest import postgres_url


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
