"""Video support over the simulated Changdong district's own cameras (as the demo runs it)."""

from __future__ import annotations

import pytest

from smartcity.auth.principal import Caller
from smartcity.core.errors import ResourceNotFound
from smartcity.operations.incidents import IncidentDraft
from smartcity.platform import Platform
from smartcity.sim.district import load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL, district_entities
from smartcity.sim.generate import generate_assets
from smartcity.sim.roads import RoadGraph
from smartcity.sim.seed import data_path
from tests.operations.conftest import TENANT, operator, point


def test_cameras_of_the_district_near_the_arena(platform: Platform) -> None:
    district = load_district()
    cameras = [
        e
        for e in district_entities(district, generate_assets(district, RoadGraph(district)))
        if e["type"] == "Camera"
    ]
    platform.contexts.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = platform.contexts.resolve(CHANGDONG_CONTEXT_URL)
    result, _ = platform.entities.batch_upsert(Caller.system(TENANT), cameras, lambda _: ctx)
    assert not result.errors
    ops = platform.operations
    arena = point(127.0515, 37.6529)
    incident = ops.incidents.create(operator(), IncidentDraft("crime", "high", "폭행", "assault",
                                                              location=arena))  # fmt: skip
    near = ops.video.cameras_near(operator(), incident.id)
    assert len(near) >= 2, "the district has cameras around the arena"
    distances = [c.distance for c in near]
    assert distances == sorted(distances)
    assert max(distances) <= 500
    assert all(c.view_direction is not None and 0 <= c.view_direction < 360 for c in near)
    assert all(c.faces_incident is not None for c in near)
    key = platform.accounts.create_key(Caller.system(TENANT), "police", ["agency"]).key
    police = platform.accounts.caller_for_key(key, TENANT)
    shared = ops.video.share(operator(), incident.id, "police", [near[0].id])
    issued = ops.video.link(police, incident.id, near[0].id)
    claims, camera, url = ops.video.open(issued.token)
    assert (claims.share_id, camera.id) == (shared.id, near[0].id)
    assert url.startswith("demo:")
    with pytest.raises(ResourceNotFound):
        ops.video.link(police, incident.id, near[1].id)
