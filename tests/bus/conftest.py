"""The bus under test: the in-process bus, or a fresh stream on the test NATS JetStream server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from smartcity.bus.base import EventBus
from smartcity.bus.memory import InProcessBus
from smartcity.bus.nats import NatsBus
from tests.conftest import check_service

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
T = TypeVar("T")


def nats_url() -> str:
    """Return the URL of the test NATS server."""
    return os.environ.get("SMARTCITY_TEST_NATS_URL", DEFAULT_NATS_URL)


def run(scenario: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """Run one test scenario on a fresh event loop; a hang fails instead of blocking the run."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


def _probe_nats() -> None:
    async def probe() -> None:
        bus = NatsBus(nats_url(), f"probe_{uuid.uuid4().hex}", [f"probe{uuid.uuid4().hex}.>"])
        await bus.start()
        try:
            await bus.delete_stream()
        finally:
            await bus.close()

    run(probe(), timeout=10)


def require_nats() -> None:
    """Skip (or fail, with SMARTCITY_REQUIRE_SERVICES=1) when NATS JetStream is unreachable."""
    check_service("NATS JetStream", _probe_nats)


@dataclass
class BusUnderTest:
    """Opens buses on one fresh stream whose subjects all start with `prefix`."""

    kind: str
    prefix: str
    stream: str
    memory: InProcessBus | None = None
    opened: list[EventBus] = field(default_factory=list)

    def subject(self, *tokens: str) -> str:
        """A subject under this test's prefix."""
        return ".".join((self.prefix, *tokens))

    async def open(self, **options: Any) -> EventBus:
        """Return a started bus on the stream (for NATS, a new connection every time)."""
        bus: EventBus
        if self.memory is not None:
            bus = self.memory
        else:
            bus = NatsBus(nats_url(), self.stream, [f"{self.prefix}.>"], **options)
        await bus.start()
        self.opened.append(bus)
        return bus

    async def close_all(self) -> None:
        """Close every bus this test opened."""
        for bus in self.opened:
            await bus.close()
        self.opened.clear()


async def _delete_stream(stream: str, prefix: str) -> None:
    bus = NatsBus(nats_url(), stream, [f"{prefix}.>"])
    await bus.start()
    try:
        await bus.delete_stream()
    finally:
        await bus.close()


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
def bus_under_test(request: pytest.FixtureRequest) -> Iterator[BusUnderTest]:
    """Yield the backend under test on a stream of its own, deleted afterwards."""
    token = uuid.uuid4().hex[:12]
    prefix, stream = f"t{token}", f"test_{token}"
    if request.param == "memory":
        yield BusUnderTest("memory", prefix, stream, memory=InProcessBus([f"{prefix}.>"]))
        return
    require_nats()
    under_test = BusUnderTest("nats", prefix, stream)
    yield under_test
    run(_delete_stream(stream, prefix), timeout=30)


async def settle_all(messages: list[Any], action: str = "ack") -> None:
    """Acknowledge (or nak, term) every message."""
    for message in messages:
        done: Awaitable[None] = getattr(message, action)()
        await done


async def eventually(condition: Callable[[], bool], checks: int = 1500) -> None:
    """Wait until `condition()` holds, checked every 20 ms (30 s by default), or fail."""
    for _ in range(checks):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met after {checks} checks")
