"""Every district entity validates against its Smart Data Models JSON Schema (from ../shared)."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.seed import data_path

SCHEMAS = {
    "Camera": "dataModel.Device/Camera",
    "Device": "dataModel.Device/Device",
    "OffStreetParking": "dataModel.Parking/OffStreetParking",
    "OnStreetParking": "dataModel.Parking/OnStreetParking",
    "ParkingSpot": "dataModel.Parking/ParkingSpot",
    "PointOfInterest": "dataModel.PointOfInterest/PointOfInterest",
    "Road": "dataModel.Transportation/Road",
    "RoadSegment": "dataModel.Transportation/RoadSegment",
    "Streetlight": "dataModel.Streetlighting/Streetlight",
    "TransportStation": "dataModel.Transportation/TransportStation",
    "WasteContainer": "dataModel.WasteManagement/WasteContainer",
}
COMMON = "https://smart-data-models.github.io/data-models/common-schema.json"
# The shared copy of the Smart Data Models has no device-schema.json: Device-Commons (the
# category and controlledProperty enumerations) is an open schema here, the rest is checked.
DEVICE_COMMONS = "https://smart-data-models.github.io/dataModel.Device/device-schema.json"


@cache
def _validator(shared_data: Path, entity_type: str) -> Draft202012Validator:
    folder = shared_data / "smart-data-models"
    common = json.loads((folder / "common-schema.json").read_text())
    registry: Registry[Any] = Registry().with_resources(
        [
            (COMMON, Resource.from_contents(common)),
            (
                DEVICE_COMMONS,
                Resource.from_contents(
                    {"$schema": common["$schema"], "definitions": {"Device-Commons": {}}}
                ),
            ),
        ]
    )
    schema = json.loads((folder / SCHEMAS[entity_type] / "schema.json").read_text())
    return Draft202012Validator(schema, registry=registry)


def key_values(entity: dict[str, Any]) -> dict[str, Any]:
    """Return the keyValues form of a normalized entity, the form the schemas describe."""
    simplified: dict[str, Any] = {}
    for name, member in entity.items():
        if name == "@context":
            continue
        if isinstance(member, dict) and member.get("type") == "Relationship":
            simplified[name] = member["object"]
        elif isinstance(member, dict) and member.get("type") in ("Property", "GeoProperty"):
            simplified[name] = member["value"]
        elif isinstance(member, dict) and member.get("type") == "JsonProperty":
            simplified[name] = member["json"]
        else:
            simplified[name] = member
    return simplified


def test_every_entity_matches_its_smart_data_model(
    shared_data: Path, changdong_entities: list[dict[str, Any]]
) -> None:
    problems = []
    for entity in changdong_entities:
        validator = _validator(shared_data, entity["type"])
        for error in validator.iter_errors(key_values(entity)):
            problems.append(f"{entity['id']}: {error.message} at {list(error.path)}")
    assert problems[:10] == []


def test_the_schema_check_catches_a_wrong_value(
    shared_data: Path, changdong_entities: list[dict[str, Any]]
) -> None:
    light = next(e for e in changdong_entities if e["type"] == "Streetlight")
    broken = {**key_values(light), "status": "glowing"}
    assert not _validator(shared_data, "Streetlight").is_valid(broken)


def test_ids_are_unique_and_every_relationship_points_inside_the_district(
    changdong_entities: list[dict[str, Any]],
) -> None:
    ids = Counter(entity["id"] for entity in changdong_entities)
    assert [i for i, n in ids.items() if n > 1] == []
    dangling = [
        (entity["id"], member["object"])
        for entity in changdong_entities
        for member in entity.values()
        if isinstance(member, dict)
        and member.get("type") == "Relationship"
        and member["object"] not in ids
    ]
    assert dangling == []
    segments = [e for e in changdong_entities if e["type"] == "Road"]
    for road in segments:
        assert all(target in ids for target in road["refRoadSegment"]["value"])


def test_context_names_the_smart_data_models_terms(
    shared_data: Path, changdong_entities: list[dict[str, Any]]
) -> None:
    """Each term means what some Smart Data Models domain context says it means."""
    ours = json.loads(data_path("changdong-context.jsonld").read_text())["@context"]
    theirs: dict[str, set[str]] = {}
    for path in (shared_data / "smart-data-models").glob("dataModel.*/context.jsonld"):
        for term, iri in json.loads(path.read_text())["@context"].items():
            if isinstance(iri, str):
                theirs.setdefault(term, set()).add(iri)
    for term, iri in ours.items():
        if term in theirs:
            assert iri in theirs[term], term
        else:
            assert iri.startswith("urn:smartcity:vocab:"), term
    used = {name for entity in changdong_entities for name in entity} | {
        entity["type"] for entity in changdong_entities
    }
    assert used - set(ours) - {"@context", "id", "type", "location"} == set()
    assert {entity["@context"] for entity in changdong_entities} == {CHANGDONG_CONTEXT_URL}


@pytest.mark.parametrize(
    ("entity_id", "korean", "english"),
    [
        ("urn:ngsi-ld:TransportStation:changdong", "창동역", "Changdong Station"),
        ("urn:ngsi-ld:PointOfInterest:seoul-arena", "서울아레나", "Seoul Arena (site)"),
        ("urn:ngsi-ld:OffStreetParking:nowon-station-public", "노원역 공영주차장", None),
    ],
)
def test_real_places_carry_korean_and_english_names(
    changdong_entities: list[dict[str, Any]], entity_id: str, korean: str, english: str | None
) -> None:
    entity = next(e for e in changdong_entities if e["id"] == entity_id)
    assert entity["name"]["value"] == korean
    assert english is None or entity["alternateName"]["value"] == english
    assert "approximate" in entity["description"]["value"]


def test_sensed_lots_count_their_free_spots(changdong_entities: list[dict[str, Any]]) -> None:
    free: Counter[str] = Counter()
    spots: Counter[str] = Counter()
    for entity in changdong_entities:
        if entity["type"] == "ParkingSpot":
            lot = entity["refParkingSite"]["object"]
            spots[lot] += 1
            free[lot] += entity["status"]["value"] == "free"
    lots = {e["id"]: e for e in changdong_entities if e["type"] == "OffStreetParking"}
    assert len(spots) == 4
    for lot_id, count in spots.items():
        assert lots[lot_id]["totalSpotNumber"]["value"] == count
        assert lots[lot_id]["availableSpotNumber"]["value"] == free[lot_id]
        assert lots[lot_id]["occupancyDetectionType"]["value"] == ["singleSpaceDetection"]
    for lot in lots.values():
        if "sharedParking" in lot:  # shared sites have no counter: availability unknown
            assert "availableSpotNumber" not in lot
            continue
        assert 0 <= lot["availableSpotNumber"]["value"] <= lot["totalSpotNumber"]["value"]
