"""An app over a fresh platform (SQLite or PostgreSQL) whose client sends an admin API key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.web.app import create_app
from tests.conftest import postgres_url
from tests.sink import Sink, running_sink

TEST_SECRET = "test-secret-for-signing-bearer-tokens-0123456789"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path) -> Settings:
    common = Settings(
        database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        context_offline=True,
        context_preload_smart_data_models=str(shared_data / "smart-data-models"),
        max_limit=100,
        auth_secret=TEST_SECRET,
    )
    if request.param == "postgres":
        schema: str = request.getfixturevalue("postgres_schema")
        return common.model_copy(update={"database_url": postgres_url(), "database_schema": schema})
    return common


@pytest.fixture
def sink() -> Iterator[Sink]:
    """Yield a local HTTP server that records the notifications it receives."""
    with running_sink() as running:
        yield running


@pytest.fixture
def platform(settings: Settings) -> Platform:
    """Return the platform under test (closed by the app that `app_client` builds over it)."""
    return build_platform(settings)


@pytest.fixture
def app_client(platform: Platform) -> Iterator[TestClient]:
    """Yield a client over the app that sends no credential."""
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def admin_key(platform: Platform, tenant: str = "", name: str = "test-admin") -> str:
    """Create an admin API key in a tenant through the accounts service; return the key."""
    return platform.accounts.create_key(Caller.system(tenant), name, ["admin"]).key


@pytest.fixture
def client(platform: Platform, app_client: TestClient) -> TestClient:
    """Return the client, sending an admin API key of the default tenant with every request."""
    app_client.headers["X-API-Key"] = admin_key(platform)
    return app_client


def admin_client(platform: Platform, *tenants: str) -> TestClient:
    """Return a client over a new app on `platform` with a fresh admin key (also in `tenants`)."""
    name = f"test-admin-{uuid.uuid4().hex[:8]}"
    client = TestClient(create_app(platform))
    client.headers["X-API-Key"] = admin_key(platform, name=name)
    for tenant in tenants:
        platform.accounts.grant(Caller.system(tenant), name, ["admin"])
    return client
