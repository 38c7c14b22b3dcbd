"""Changes rendered once for every follower: the same JSON for all, and a bounded memory."""

from __future__ import annotations

import orjson

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.platform import Platform, build_platform
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.seed import data_path
from smartcity.web.livemap.rendered import RenderedChanges


def lots(platform: Platform, count: int) -> None:
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    entities = [
        {
            "id": f"urn:ngsi-ld:OffStreetParking:lot-{n}",
            "type": "OffStreetParking",
            "availableSpotNumber": {"type": "Property", "value": n},
        }
        for n in range(count)
    ]
    result, _ = platform.entities.batch_upsert(Caller.system(), entities, lambda _: ctx)
    assert not result.errors


def test_a_change_is_rendered_once_and_the_oldest_go_first(settings: Settings) -> None:
    platform = build_platform(settings)
    try:
        lots(platform, 5)
        ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
        changes = platform.store.changes_since(0, 10)
        assert len(changes) == 5
        rendered = RenderedChanges(capacity=3)
        first = rendered.event(changes[:2], ctx)
        again = rendered.event(changes[:2], ctx)
        assert first == again
        body = orjson.loads(first)
        assert [c["seq"] for c in body["changes"]] == [changes[0].seq, changes[1].seq]
        for change in body["changes"]:
            entity = change["entity"]  # concise, under the district's @context
            assert entity["availableSpotNumber"] == int(entity["id"].rsplit("-", 1)[1])
            assert change["kind"] == "create"
        # The same bytes are handed out while kept: rendered once, however many follow.
        assert rendered.json(changes[0], ctx) is rendered.json(changes[0], ctx)
        rendered.event(changes[2:], ctx)
        assert [c.seq in rendered for c in changes] == [False, False, True, True, True]
    finally:
        platform.close()
