"""/ops/v1/incidents/stream: incident changes by tenant and visibility, resumable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import httpx
import pytest
from fastapi.testclient import TestClient

from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from tests.web.access_city import City
from tests.web.live_server import EventReader, serving
from tests.web.ops_city import ARENA, INCIDENTS, build_ops_city, camera_id


@pytest.fixture
def platform(settings: Settings) -> Platform:
    quick = {"ops_stream_poll_interval": 0.05, "stream_heartbeat": 0.5, "ops_enabled": False}
    return build_platform(settings.model_copy(update=quick))


@pytest.fixture
def served(platform: Platform) -> Iterator[tuple[str, City]]:
    with serving(platform) as base, httpx.Client(base_url=base, timeout=30.0) as client:
        # TestClient is an httpx.Client: the city only sends requests through it.
        yield base, build_ops_city(platform, cast(TestClient, client))


@contextmanager
def stream(url: str, headers: dict[str, str]) -> Iterator[EventReader]:
    with (
        httpx.Client(timeout=httpx.Timeout(30.0)) as http,
        http.stream("GET", f"{url}{INCIDENTS}/stream", headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


def incident_events(reader: EventReader) -> list[tuple[str, str]]:
    return [(e.data["event"], e.data["incidentId"]) for e in reader.events if e.name == "incident"]


def test_the_stream_shows_what_each_caller_may_see(served: tuple[str, City]) -> None:
    url, city = served
    body = {
        "type": "crime",
        "subtype": "assault",
        "severity": "high",
        "title": "폭행",
        "location": {"type": "Point", "coordinates": list(ARENA)},
    }
    with stream(url, city.as_("operator")) as operator, stream(url, city.as_("police")) as police:
        first = city.call("operator", "POST", INCIDENTS, body).json()["id"]
        second = city.call("operator", "POST", INCIDENTS, body).json()["id"]
        share = {"agency": "police", "cameras": [camera_id("gate-1")]}
        assert (
            city.call("operator", "POST", f"{INCIDENTS}/{second}/shares", share).status_code == 201
        )
        operator.until(lambda _: len(incident_events(operator)) == 3, timeout=60)
        assert incident_events(operator) == [
            ("created", first),
            ("created", second),
            ("share-granted", second),
        ]
        police.until(lambda _: ("share-granted", second) in incident_events(police), timeout=60)
        # Only the shared incident; its "created" too when the share came in the same read.
        assert {incident for _, incident in incident_events(police)} == {second}
        last = operator.events[-1]
        assert last.data["incident"]["status"] == "new"
    # Resuming after the first event gives the rest, in order.
    headers = {**city.as_("operator"), "Last-Event-ID": operator.events[0].id or ""}
    assert operator.events[0].name == "incident"
    with stream(url, headers) as resumed:
        resumed.until(lambda _: len(incident_events(resumed)) == 2, timeout=60)
        assert incident_events(resumed) == [("created", second), ("share-granted", second)]
    with httpx.Client(timeout=5.0) as http:
        refused = http.get(f"{url}{INCIDENTS}/stream", headers=city.as_("anonymous"))
        assert refused.status_code == 401
        other = http.get(
            f"{url}{INCIDENTS}/stream", headers={**city.as_("operator"), "Last-Event-ID": "x"}
        )
        assert other.status_code == 400


def test_a_write_in_this_process_wakes_the_streams_at_once(settings: Settings) -> None:
    # Reads every 2 minutes for other processes' writes; this process's wake it now.
    slow = {"ops_stream_poll_interval": 60.0, "stream_heartbeat": 120.0, "ops_enabled": False}
    platform = build_platform(settings.model_copy(update=slow))
    with serving(platform) as url, httpx.Client(base_url=url, timeout=30.0) as client:
        city = build_ops_city(platform, cast(TestClient, client))
        body = {"type": "fire", "severity": "high", "title": "화재"}
        with stream(url, city.as_("operator")) as operator:
            first = city.call("operator", "POST", INCIDENTS, body).json()["id"]
            operator.until(lambda _: bool(incident_events(operator)), timeout=20)
            # The stream has read and now waits: the next write must wake it.
            second = city.call("operator", "POST", INCIDENTS, body).json()["id"]
            operator.until(lambda _: len(incident_events(operator)) == 2, timeout=20)
            assert incident_events(operator) == [("created", first), ("created", second)]
