"""The schema catalog: offline $ref resolution, partial checks, and the fast predicates."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.errors import ConfigurationError
from smartcity.ingest.ports import Rejected
from smartcity.ingest.schemas import AttributeRule, SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer
from tests.conftest import SHARED_DATA

ENVIRONMENT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
MISSING_IN_SHARED = {
    ENVIRONMENT + "Environment-schema.json#/definitions/airQualityLevel",
    "https://smart-data-models.github.io/dataModel.Alert/alert-schema.json"
    "#/definitions/Common-Alert",
    "https://smart-data-models.github.io/dataModel.Device/device-schema.json"
    "#/definitions/Device-Commons",
    "https://smart-data-models.github.io/dataModel.Device/device-schema.json"
    "#/definitions/Device-Commons/properties/category",
    "https://smart-data-models.github.io/dataModel.Environment/Environment-schema.json"
    "#/definitions/TimeSeriesAggregation",
    "https://smart-data-models.github.io/dataModel.Environment/Environment-schema.json"
    "#/definitions/TimeSeriesAggregation/properties",
    "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json"
    "#/definitions/Weather-Commons",
    "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json"
    "#/definitions/WeatherAlertCategories",
}


def test_every_model_of_the_shared_data_is_in_the_catalog(catalog: SchemaCatalog) -> None:
    folders = {p.parent.name for p in (SHARED_DATA / "smart-data-models").glob("*/*/schema.json")}
    assert set(catalog.types) == folders
    assert len(folders) == 77


def test_models_published_with_another_models_id_or_type_keep_their_own(
    catalog: SchemaCatalog,
) -> None:
    # StreetlightModel's schema carries Streetlight's $id; TrafficEnvironmentImpactForecast's
    # type enum says TrafficEnvironmentImpact. Each model is still checked by its own schema.
    model = catalog.shape("StreetlightModel")
    light = catalog.shape("Streetlight")
    assert model is not None
    assert light is not None
    assert model.schema_id != light.schema_id
    assert "powerState" in light.rules
    assert "powerState" not in model.rules
    forecast = catalog.shape("TrafficEnvironmentImpactForecast")
    assert forecast is not None
    assert forecast.schema_id.endswith("TrafficEnvironmentImpactForecast/schema.json")


def test_the_refs_no_shared_file_answers_are_listed(catalog: SchemaCatalog) -> None:
    assert set(catalog.unresolved) == MISSING_IN_SHARED


def test_an_unresolved_ref_accepts_anything_and_the_rest_is_still_checked(
    standardizer: SmartDataStandardizer,
) -> None:
    loose = {"type": "Property", "value": "whatever the operator's models say"}
    standardizer.standardize("", "AirQualityObserved", {"airQualityLevel": loose}, [])
    with pytest.raises(Rejected) as refused:
        standardizer.standardize(
            "", "AirQualityObserved", {"airQualityLevel": loose, "co": {"value": -1}}, []
        )
    assert (refused.value.reason, refused.value.path) == ("out-of-range", "co")


def test_adding_the_missing_file_closes_the_gap(models_folder: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "Environment-schema.json").write_bytes(
        orjson.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": ENVIRONMENT + "Environment-schema.json",
                "definitions": {
                    "airQualityLevel": {
                        "type": "string",
                        "enum": ["good", "moderate", "unhealthy", "veryUnhealthy"],
                    }
                },
            }
        )
    )
    catalog = SchemaCatalog([models_folder, extra])
    assert ENVIRONMENT + "Environment-schema.json#/definitions/airQualityLevel" not in (
        catalog.unresolved
    )
    standardizer = SmartDataStandardizer(catalog)
    level = {"airQualityLevel": {"type": "Property", "value": "moderate"}}
    standardizer.standardize("", "AirQualityObserved", level, [])
    level["airQualityLevel"]["value"] = "so-so"
    with pytest.raises(Rejected) as refused:
        standardizer.standardize("", "AirQualityObserved", level, [])
    assert (refused.value.reason, refused.value.path) == ("schema", "airQualityLevel")


def test_nothing_is_ever_fetched(tmp_path: Path) -> None:
    # A listening socket that nobody should connect to: a fetch would wait in its backlog.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        (tmp_path / "schema.json").write_bytes(
            orjson.dumps(
                {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "$id": "https://example.org/Lamp/schema.json",
                    "allOf": [
                        {"$ref": f"{url}/common.json#/definitions/Commons"},
                        {
                            "properties": {
                                "type": {"enum": ["Lamp"]},
                                "brightness": {"$ref": f"{url}/common.json#/b"},
                                "watts": {"type": "number", "minimum": 0},
                            }
                        },
                    ],
                }
            )
        )
        catalog = SchemaCatalog([tmp_path])
        standardizer = SmartDataStandardizer(catalog)
        result = standardizer.standardize(
            "", "Lamp", {"brightness": {"value": "anything"}, "watts": {"value": 60}}, []
        )
        assert result["watts"]["value"] == 60
        with pytest.raises(Rejected):
            standardizer.standardize("", "Lamp", {"watts": {"value": -1}}, [])
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert len(catalog.unresolved) == 2


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SchemaCatalog([tmp_path / "nowhere"])


def test_required_members_are_not_asked_of_a_partial_update(
    standardizer: SmartDataStandardizer,
) -> None:
    # AirQualityObserved requires id, type, dateObserved and location: an update may carry
    # only one measurement.
    update = {"no2": {"type": "Property", "value": 22.0, "unitCode": "GQ"}}
    assert standardizer.standardize("", "AirQualityObserved", update, []) == update


def test_uris_are_checked(standardizer: SmartDataStandardizer) -> None:
    image = {"image": {"value": "https://changdong.example/lamps/7.jpg"}}
    standardizer.standardize("", "Streetlight", image, [])
    image["image"]["value"] = "lamp 7.jpg"
    with pytest.raises(Rejected, match="is not a 'uri'") as refused:
        standardizer.standardize("", "Streetlight", image, [])
    assert refused.value.path == "image"


def test_formats_are_checked(standardizer: SmartDataStandardizer) -> None:
    with pytest.raises(Rejected) as refused:
        standardizer.standardize(
            "", "Streetlight", {"dateLastLampChange": {"value": "last spring"}}, []
        )
    assert (refused.value.reason, refused.value.path) == ("time", "dateLastLampChange.value")


# -- the fast predicates give jsonschema's verdict ------------------------------------------

SAMPLES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    0.5,
    1.0,
    1.5,
    186,
    -200,
    2**40,
    1e300,
    "",
    "x",
    "ok",
    "on",
    "off",
    "2026-11-28T01:00:00Z",
    "2026-11-28T01:00:00",
    "2026-11-28",
    "12:00:00",
    "not a date",
    "urn:ngsi-ld:Device:1",
    "a b",
    "kim@example.org",
    "127.0.0.1",
    [],
    [1, 2],
    ["a", "b"],
    [[1, 2], [3, 4]],
    {},
    {"type": "Point", "coordinates": [127.0, 37.6]},
    {"type": "Point", "coordinates": [127.0]},
    {"type": "Point", "coordinates": ["a", "b"]},
    {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
    {"type": "Polygon", "coordinates": [[[1, 2], [3, 4], [5, 6], [1, 2]]]},
    {"streetAddress": "Changdong-ro 1", "addressLocality": "Seoul", "addressCountry": "KR"},
    {"addressLocality": 7},
]


def _example_values() -> dict[str, list[Any]]:
    """Every key-values value of every shared example, by attribute name."""
    values: dict[str, list[Any]] = {}
    for path in (SHARED_DATA / "smart-data-models").glob("*/*/example.json"):
        try:
            example = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            continue
        for entity in example if isinstance(example, list) else [example]:
            if isinstance(entity, dict):
                for name, value in entity.items():
                    values.setdefault(name, []).append(value)
    return values


def _rules(catalog: SchemaCatalog, types: list[str]) -> list[AttributeRule]:
    shapes = [catalog.shape(entity_type) for entity_type in types]
    return [rule for shape in shapes if shape is not None for rule in shape.rules.values()]


def test_every_fast_predicate_agrees_with_jsonschema(catalog: SchemaCatalog) -> None:
    examples = _example_values()
    rules = _rules(catalog, catalog.types)
    fast = [rule for rule in rules if rule.fast is not None]
    # Most attributes get a predicate; the others go to jsonschema.
    assert len(fast) > 0.9 * len(rules)
    checked = 0
    for rule in fast:
        assert rule.fast is not None
        for value in [*SAMPLES, *examples.get(rule.name, [])]:
            assert rule.fast(copy.deepcopy(value)) == rule.validator.is_valid(value), (
                rule.name,
                value,
            )
            checked += 1
    assert checked > 10_000


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(SAMPLES[18:30]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "coordinates", "value", "name", "addressLocality", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(value=JSON, index=st.integers(min_value=0))
def test_fast_predicates_agree_on_any_json(catalog: SchemaCatalog, value: Any, index: int) -> None:
    types = ["AirQualityObserved", "OffStreetParking", "Streetlight", "TrafficFlowObserved"]
    rules = [rule for rule in _rules(catalog, types) if rule.fast is not None]
    rule = rules[index % len(rules)]
    assert rule.fast is not None
    assert rule.fast(value) == rule.validator.is_valid(value)
