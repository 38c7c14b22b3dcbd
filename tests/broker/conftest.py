"""Fixtures of the broker tests: a local server of @context documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bus.conftest import bus_under_test  # noqa: F401 (the relay tests run on every bus)
from tests.context_server import ContextServer, serving_contexts


@pytest.fixture
def server() -> Iterator[ContextServer]:
    """Yield a running local server of @context documents."""
    with serving_contexts() as running:
        yield running
