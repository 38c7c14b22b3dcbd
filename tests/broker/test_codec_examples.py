"""Every Smart Data Models normalized example survives parse -> render, or is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smartcity.broker.codec import parse_entity, render_entity
from smartcity.broker.contexts import CORE, ContextResolver
from smartcity.core.errors import BadRequestData, LdContextNotAvailable

SMART_DATA_MODELS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "smart-data-models"
)
EXAMPLES = sorted(SMART_DATA_MODELS.glob("dataModel.*/*/example-normalized.jsonld"))
NOW = "2026-11-27T10:00:00.000000Z"

# Examples that break an NGSI-LD rule, and the part of the error message that says which.
INVALID: dict[str, str] = {
    "NightSkyQuality": "the entity id 'DTI-036' is not an absolute URI",
    "FloodMonitoring": "attribute 'floodLevelStatus' has type 'string'",
    "RestrictionException": "attribute 'name' has type 'string'",
    "SpecialRestriction": "attribute 'name' has type 'string'",
    "TransportStation": "attribute 'dateLastReported' has type 'DateTime'",
    "CityWork": "attribute 'tramwayImpacted' has type 'Property '",
    "PhreaticObserved": "observedAt of 'depth' must be an ISO 8601 date-time",
    "WaterObserved": "object of relationship 'dateObserved' must be an entity URI",
    "DeviceMeasurement": "'location' must be a GeoProperty",
    "AirQualityMonitoring": "'location' must be a GeoProperty",
    "BikeLane": "'location' must be a GeoProperty",
    "FareCollectionSystem": "'location' must be a GeoProperty",
}
# Examples whose @context is not among the shared data (so not available offline).
UNAVAILABLE: dict[str, str] = {"UWBAnchor": "dataModel.Aeronautics"}


@pytest.fixture(scope="module")
def resolver() -> ContextResolver:
    offline = ContextResolver(allowed_hosts=[])
    offline.preload_smart_data_models(SMART_DATA_MODELS)
    return offline


def load(path: Path) -> tuple[Any, dict[str, Any]]:
    example = json.loads(path.read_text())
    return example.pop("@context"), example


def test_the_examples_are_there() -> None:
    assert len(EXAMPLES) > 50
    names = {path.parent.name for path in EXAMPLES}
    assert set(INVALID) | set(UNAVAILABLE) <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.parent.name)
def test_example_round_trips(path: Path, resolver: ContextResolver) -> None:
    context, example = load(path)
    name = path.parent.name
    if name in UNAVAILABLE:
        with pytest.raises(LdContextNotAvailable, match=UNAVAILABLE[name]):
            resolver.resolve(context)
        return
    ctx = resolver.resolve(context)
    if name in INVALID:
        with pytest.raises(BadRequestData) as raised:
            parse_entity(example, ctx, NOW)
        assert INVALID[name] in raised.value.detail
        return
    entity = parse_entity(example, ctx, NOW)
    assert render_entity(entity, ctx, form="normalized") == example


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.parent.name)
def test_example_round_trips_under_the_core_context_alone(path: Path) -> None:
    _, example = load(path)
    if path.parent.name in INVALID:
        return
    entity = parse_entity(example, CORE, NOW)
    assert render_entity(entity, CORE, form="normalized") == example
    concise = render_entity(entity, CORE, form="concise")
    assert parse_entity(concise, CORE, NOW) == entity
