"""Fixtures shared by every test package, and the rule for tests that need a running service."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import structlog
from hypothesis import HealthCheck, settings
from psycopg import sql

from smartcity.storage.postgres import PostgresEntityStore
from smartcity.storage.sqlbase import SqlEntityStore
from smartcity.storage.sqlite import SqliteEntityStore

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REQUIRE_SERVICES = "SMARTCITY_REQUIRE_SERVICES"

# CI machines are shared: a property test's speed says nothing about its correctness.
settings.register_profile("smartcity", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("smartcity")

# Service name -> why it is unreachable ("" when it is reachable); each is probed once a session.
_service_problems: dict[str, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with the reason, when the reference data beside the repository is missing."""
    if not (SHARED_DATA / "smart-data-models").is_dir():
        raise pytest.UsageError(
            f"the shared reference data is missing: expected {SHARED_DATA} "
            "(the folder shared/ laid beside this repository)"
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return the folder of third-party reference data laid beside the repository."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def require_service() -> Callable[[str, Callable[[], object]], None]:
    """Return `check_service`, for fixtures of test packages (conftest modules are not imported)."""
    return check_service


def check_service(name: str, check: Callable[[], object]) -> None:
    """Skip the calling test if a service is unreachable; fail instead if services are required.

    `check` raises when the service cannot be used; its message becomes the reason. Set
    SMARTCITY_REQUIRE_SERVICES=1 (as CI does) so that a missing service fails the run instead of
    silently skipping the tests that need it.
    """
    if name not in _service_problems:
        try:
            check()
        except Exception as error:
            _service_problems[name] = f"{type(error).__name__}: {error}".strip()
        else:
            _service_problems[name] = ""
    problem = _service_problems[name]
    if not problem:
        return
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(
            f"{name} is required ({REQUIRE_SERVICES}=1) but unreachable: {problem}", pytrace=False
        )
    pytest.skip(f"{name} is unreachable: {problem}")


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_url() -> str:
    """Return the URL of the test PostgreSQL server."""
    return os.environ.get("SMARTCITY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _connect_postgres() -> None:
    with psycopg.connect(postgres_url(), connect_timeout=3) as connection:
        connection.execute("SELECT 1")


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """Yield the name of a fresh schema, dropped with all it holds after the test."""
    check_service("PostgreSQL", _connect_postgres)
    schema = f"test_{uuid.uuid4().hex}"
    yield schema
    with psycopg.connect(postgres_url(), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlEntityStore]:
    """Yield an empty store of each backend (SQLite, and PostgreSQL in a fresh schema)."""
    opened: SqlEntityStore
    if request.param == "sqlite":
        opened = SqliteEntityStore(tmp_path / "entities.db")
    else:
        schema: str = request.getfixturevalue("postgres_schema")
        opened = PostgresEntityStore(postgres_url(), schema=schema, max_size=8)
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Undo what a command run in-process did to logging (handlers on a captured stream)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
