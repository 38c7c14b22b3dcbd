"""/map/stream: server-sent entity changes by tenant and visibility, resumed without gaps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from smartcity.auth.policy import PUBLIC_MARK
from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from tests.web.conftest import admin_key
from tests.web.live_server import Event, EventReader, changed_ids, serving

PARKING_TYPE = "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"


@pytest.fixture
def platform(settings: Settings) -> Platform:
    """Return a platform whose streams beat often and re-check credentials every second."""
    quick = {
        "stream_heartbeat": 0.5,
        "stream_min_interval": 0.01,
        "stream_poll_interval": 0.5,
        "auth_cache_seconds": 0.0,
    }
    return build_platform(settings.model_copy(update=quick))


@pytest.fixture
def url(platform: Platform) -> Iterator[str]:
    with serving(platform) as base:
        yield base


@contextmanager
def stream(url: str, headers: dict[str, str] | None = None) -> Iterator[EventReader]:
    """Open /map/stream and yield a reader of its events."""
    with (
        httpx.Client(timeout=httpx.Timeout(5.0)) as http,
        http.stream("GET", f"{url}/map/stream", headers=headers or {}) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


def put(platform: Platform, tenant: str, *entities: dict[str, Any]) -> None:
    """Upsert entities as the district loader writes them (under the Changdong @context)."""
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    result, _ = platform.entities.batch_upsert(Caller.system(tenant), list(entities), lambda _: ctx)
    assert not result.errors


def parking(number: int, free: int = 5) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:OffStreetParking:lot-{number}",
        "type": "OffStreetParking",
        "availableSpotNumber": {
            "type": "Property",
            "value": free,
            "observedAt": "2026-11-27T10:00:00Z",
        },
    }


def camera(number: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Camera:cam-{number}", "type": "Camera"}


def saw(*entity_ids: str) -> Any:
    return lambda events: set(entity_ids) <= set(changed_ids(events))


def beat_after(events: list[Event], count: int) -> bool:
    return sum(e.name == "heartbeat" for e in events) >= count


def test_anonymous_sees_public_types_and_an_admin_everything(platform: Platform, url: str) -> None:
    platform.accounts.mark_type(Caller.system(), PARKING_TYPE, PUBLIC_MARK)
    key = admin_key(platform)
    with stream(url) as anonymous, stream(url, {"X-API-Key": key}) as admin:
        put(platform, "", camera(1), parking(1))
        admin_events = admin.until(
            saw("urn:ngsi-ld:Camera:cam-1", "urn:ngsi-ld:OffStreetParking:lot-1")
        )
        anonymous.until(saw("urn:ngsi-ld:OffStreetParking:lot-1"))
        anonymous.until(lambda events: beat_after(events, 2))  # the camera would be there by now
    assert "urn:ngsi-ld:Camera:cam-1" not in changed_ids(anonymous.events)
    assert anonymous.retry == 3000
    lot = next(
        change["entity"]
        for event in admin_events
        if event.name == "changes"
        for change in event.data["changes"]
        if change["entity"]["id"].endswith("lot-1")
    )
    # Concise form under the district's @context, with when the entity last changed.
    assert lot["availableSpotNumber"] == {"value": 5, "observedAt": "2026-11-27T10:00:00Z"}
    assert lot["modifiedAt"].endswith("Z")


def test_a_bad_credential_is_refused_before_streaming(url: str) -> None:
    response = httpx.get(f"{url}/map/stream", headers={"X-API-Key": "not-a-key"}, timeout=5)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_bad_last_event_id_is_refused(url: str) -> None:
    response = httpx.get(f"{url}/map/stream", headers={"Last-Event-ID": "seven"}, timeout=5)
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["detail"]


def test_a_stream_keeps_to_its_tenant(platform: Platform, url: str) -> None:
    key = admin_key(platform)
    platform.accounts.grant(Caller.system("north"), "test-admin", ["admin"])
    headers = {"X-API-Key": key}
    with (
        stream(url, headers) as default,
        stream(url, {**headers, "NGSILD-Tenant": "north"}) as north,
    ):
        put(platform, "north", camera(7))
        put(platform, "", camera(8))
        north.until(saw("urn:ngsi-ld:Camera:cam-7"))
        default.until(saw("urn:ngsi-ld:Camera:cam-8"))
        north.until(lambda events: beat_after(events, 2))
    assert changed_ids(north.events) == ["urn:ngsi-ld:Camera:cam-7"]
    assert changed_ids(default.events) == ["urn:ngsi-ld:Camera:cam-8"]


def test_only_the_types_the_map_shows_are_streamed(platform: Platform, url: str) -> None:
    with stream(url, {"X-API-Key": admin_key(platform)}) as admin:
        put(platform, "", {"id": "urn:ngsi-ld:Building:b1", "type": "Building"}, camera(2))
        admin.until(saw("urn:ngsi-ld:Camera:cam-2"))
        admin.until(lambda events: beat_after(events, 1))
    assert "urn:ngsi-ld:Building:b1" not in changed_ids(admin.events)


def test_reconnecting_with_last_event_id_misses_nothing(platform: Platform, url: str) -> None:
    headers = {"X-API-Key": admin_key(platform)}
    with stream(url, headers) as first:
        put(platform, "", parking(1, free=1))
        first.until(saw("urn:ngsi-ld:OffStreetParking:lot-1"))
    last_id = [e.id for e in first.events if e.id is not None][-1]
    assert last_id is not None
    # While disconnected: five lots change, one of them twice.
    for number in range(2, 7):
        put(platform, "", parking(number, free=number))
    put(platform, "", parking(4, free=40))
    wanted = [f"urn:ngsi-ld:OffStreetParking:lot-{n}" for n in range(2, 7)]
    with stream(url, {**headers, "Last-Event-ID": last_id}) as second:
        events = second.until(saw(*wanted))
    seen = changed_ids(events)
    assert sorted(seen) == wanted  # each once, nothing from before the id
    lot_4 = next(
        change["entity"]
        for event in events
        if event.name == "changes"
        for change in event.data["changes"]
        if change["entity"]["id"].endswith("lot-4")
    )
    assert lot_4["availableSpotNumber"]["value"] == 40
    ids = [int(e.id) for e in events if e.id is not None]
    assert ids == sorted(ids)
    assert ids[0] > int(last_id)


def test_the_after_parameter_starts_a_stream_where_a_page_loaded(
    platform: Platform, url: str
) -> None:
    put(platform, "", camera(1))
    position = platform.store.last_change_seq()
    put(platform, "", camera(2))
    with stream(url, {"X-API-Key": admin_key(platform)}) as from_now:
        from_now.until(lambda events: beat_after(events, 1))
    assert changed_ids(from_now.events) == []
    with (
        httpx.Client(timeout=5) as http,
        http.stream(
            "GET",
            f"{url}/map/stream",
            params={"after": position},
            headers={"X-API-Key": admin_key(platform, name="second-admin")},
        ) as response,
    ):
        reader = EventReader(response)
        reader.until(saw("urn:ngsi-ld:Camera:cam-2"))
    assert changed_ids(reader.events) == ["urn:ngsi-ld:Camera:cam-2"]


def test_a_position_the_log_let_go_gets_a_reset(platform: Platform, url: str) -> None:
    put(platform, "", camera(1))
    old = platform.store.last_change_seq()
    put(platform, "", camera(2))
    platform.store.prune_changes(old)
    headers = {"X-API-Key": admin_key(platform), "Last-Event-ID": str(old)}
    with stream(url, headers) as reader:
        event = reader.next_event()
        with pytest.raises(EOFError):
            reader.next_event()
    assert event.name == "reset"
    assert event.data["position"] == old


def test_a_credential_disabled_meanwhile_ends_the_stream(platform: Platform, url: str) -> None:
    key = admin_key(platform, name="soon-disabled")
    with stream(url, {"X-API-Key": key}) as reader:
        reader.until(lambda events: beat_after(events, 1))
        platform.accounts.set_disabled(Caller.system(), "soon-disabled", True)
        events = reader.until(lambda events: events[-1].name == "denied")
        with pytest.raises(EOFError):
            reader.next_event()
    assert events[-1].data["reason"]
    again = httpx.get(f"{url}/map/stream", headers={"X-API-Key": key}, timeout=5)
    assert again.status_code == 401


def test_stopping_the_server_ends_its_streams(platform: Platform, url: str) -> None:
    with stream(url) as reader:
        reader.until(lambda events: beat_after(events, 1))
        platform.changes.close()  # what `smartcity serve` does on SIGTERM or Ctrl+C
        with pytest.raises(EOFError):
            reader.until(lambda events: False)
