"""The store under test: one SQLite file, or one fresh schema of the test PostgreSQL server."""

from __future__ import annotations

import pytest

from smartcity.storage.base import EntityStore
from smartcity.storage.sqlbase import SqlEntityStore


@pytest.fixture
def store(backend_store: SqlEntityStore) -> EntityStore:
    """Return an empty store of each backend (the root conftest's `backend_store`)."""
    return backend_store
