"""The standardizer on updates as devices and adapters send them."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smartcity.ingest.ports import Rejected
from smartcity.ingest.schemas import SchemaCatalog
from smartcity.ingest.standardize import SmartDataStandardizer, as_normalized

POINT = {"type": "Point", "coordinates": [127.0477, 37.6531]}


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        (21.5, {"type": "Property", "value": 21.5}),
        (
            {"value": 21.5, "unitCode": "CEL"},
            {"type": "Property", "value": 21.5, "unitCode": "CEL"},
        ),
        (
            {"object": "urn:ngsi-ld:Device:1"},
            {"type": "Relationship", "object": "urn:ngsi-ld:Device:1"},
        ),
        (POINT, {"type": "GeoProperty", "value": POINT}),
        ({"value": POINT}, {"type": "GeoProperty", "value": POINT}),
        (
            {"languageMap": {"ko": "창동역"}},
            {"type": "LanguageProperty", "languageMap": {"ko": "창동역"}},
        ),
        ({"streetAddress": "x"}, {"type": "Property", "value": {"streetAddress": "x"}}),
        (
            {"type": "Relationship", "object": "urn:x:1"},
            {"type": "Relationship", "object": "urn:x:1"},
        ),
    ],
)
def test_concise_attributes_become_normalized(given: Any, normalized: dict[str, Any]) -> None:
    assert as_normalized(given) == normalized


def test_an_update_from_a_device(standardizer: SmartDataStandardizer) -> None:
    update = {
        "temperature": {"value": 71.6, "unitCode": "°F", "observedAt": "2026-11-28T10:00:00+09:00"},
        "relativeHumidity": {"value": 40, "unitCode": "%"},
        "dateObserved": 1764291600,
        "location": {"type": "Point", "coordinates": [37.6531, 127.0477]},
        "refDevice": {"object": "urn:ngsi-ld:Device:aq-1"},
    }
    result = standardizer.standardize("", "AirQualityObserved", update, [])
    assert result == {
        "temperature": {
            "type": "Property",
            "value": 22,
            "unitCode": "CEL",
            "observedAt": "2026-11-28T01:00:00.000000Z",
        },
        "relativeHumidity": {"type": "Property", "value": 0.4, "unitCode": "C62"},
        "dateObserved": {"type": "Property", "value": "2025-11-28T01:00:00.000000Z"},
        "location": {"type": "GeoProperty", "value": POINT},
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:aq-1"},
    }
    assert update["dateObserved"] == 1764291600  # the input is left as it was


def test_the_unit_the_model_declares_is_the_one_stored(
    standardizer: SmartDataStandardizer,
) -> None:
    # OffStreetParking: "averageSpotWidth ... Units:'meters'".
    width = {"averageSpotWidth": {"value": 250, "unitCode": "cm"}}
    result = standardizer.standardize("", "OffStreetParking", width, [])
    assert result["averageSpotWidth"] == {"type": "Property", "value": 2.5, "unitCode": "MTR"}
    with pytest.raises(Rejected, match="the model wants metre") as refused:
        standardizer.standardize(
            "", "OffStreetParking", {"averageSpotWidth": {"value": 2, "unitCode": "KGM"}}, []
        )
    assert (refused.value.reason, refused.value.path) == ("unit", "averageSpotWidth.unitCode")


def test_a_fraction_sent_as_a_percentage_without_a_unit_is_out_of_range(
    standardizer: SmartDataStandardizer,
) -> None:
    with pytest.raises(Rejected, match="maximum") as refused:
        standardizer.standardize("", "AirQualityObserved", {"relativeHumidity": 40}, [])
    assert (refused.value.reason, refused.value.stage) == ("out-of-range", "validate")


def test_each_instance_of_a_multi_attribute_is_checked(
    standardizer: SmartDataStandardizer,
) -> None:
    instances = [
        {"type": "Property", "value": 10, "datasetId": "urn:ngsi-ld:Dataset:lane-1"},
        {"type": "Property", "value": -4, "datasetId": "urn:ngsi-ld:Dataset:lane-2"},
    ]
    with pytest.raises(Rejected) as refused:
        standardizer.standardize("", "TrafficFlowObserved", {"intensity": instances}, [])
    assert (refused.value.reason, refused.value.path) == ("out-of-range", "intensity[1]")
    instances[1]["value"] = 4
    result = standardizer.standardize("", "TrafficFlowObserved", {"intensity": instances}, [])
    assert [i["value"] for i in result["intensity"]] == [10, 4]


def test_sub_attributes_are_normalized(standardizer: SmartDataStandardizer) -> None:
    update = {
        "temperature": {
            "value": 21,
            "unitCode": "CEL",
            "accuracy": {"value": 0.9, "unitCode": "°F", "observedAt": 1764291600000},
        }
    }
    result = standardizer.standardize("", "AirQualityObserved", update, [])
    assert result["temperature"]["accuracy"] == {
        "type": "Property",
        "value": pytest.approx(-17.2777777778),
        "unitCode": "CEL",
        "observedAt": "2025-11-28T01:00:00.000000Z",
    }


def test_names_that_are_not_attributes_are_refused(standardizer: SmartDataStandardizer) -> None:
    for name in ("id", "type", "@context"):
        with pytest.raises(Rejected, match="not an attribute") as refused:
            standardizer.standardize("", "AirQualityObserved", {name: "x"}, [])
        assert refused.value.path == name


def test_a_smart_data_models_iri_names_the_same_attribute(
    standardizer: SmartDataStandardizer,
) -> None:
    iri = "https://smartdatamodels.org/dataModel.Environment/relativeHumidity"
    with pytest.raises(Rejected) as refused:
        standardizer.standardize("", "AirQualityObserved", {iri: 1.5}, [])
    assert refused.value.reason == "out-of-range"


def test_each_language_of_a_language_property_is_checked(
    standardizer: SmartDataStandardizer,
) -> None:
    names = {"name": {"languageMap": {"ko": "창동역 공영주차장", "en": "Changdong Station"}}}
    standardizer.standardize("", "OffStreetParking", names, [])
    with pytest.raises(Rejected) as refused:
        standardizer.standardize("", "OffStreetParking", {"name": {"languageMap": {"ko": 7}}}, [])
    assert refused.value.path == "name.languageMap.ko"


def test_types_without_a_schema_are_normalized_or_refused(catalog: SchemaCatalog) -> None:
    lenient = SmartDataStandardizer(catalog)
    custom = {"glow": {"value": 300, "unitCode": "lux"}}
    assert lenient.standardize("", "KioskLamp", custom, [])["glow"]["unitCode"] == "LUX"
    strict = SmartDataStandardizer(catalog, require_schema=True)
    with pytest.raises(Rejected, match="no Smart Data Models schema for type 'KioskLamp'"):
        strict.standardize("", "KioskLamp", custom, [])


def test_without_schemas_only_normalization_applies() -> None:
    bare = SmartDataStandardizer(naive_time_zone=ZoneInfo("Asia/Seoul"))
    result = bare.standardize(
        "",
        "AirQualityObserved",
        {"relativeHumidity": {"value": 40, "unitCode": "%", "observedAt": "2026-11-28 10:00"}},
        [],
    )
    assert result["relativeHumidity"] == {
        "type": "Property",
        "value": 40,
        "unitCode": "P1",
        "observedAt": "2026-11-28T01:00:00.000000Z",
    }
    with pytest.raises(Rejected) as refused:
        bare.standardize(
            "", "Anything", {"location": {"type": "Point", "coordinates": [0, 91]}}, []
        )
    assert refused.value.reason == "out-of-range"


def test_a_relationship_needs_its_object(standardizer: SmartDataStandardizer) -> None:
    with pytest.raises(Rejected, match="member named 'object'") as refused:
        standardizer.standardize(
            "", "AirQualityObserved", {"refDevice": {"type": "Relationship"}}, []
        )
    assert (refused.value.reason, refused.value.stage) == ("schema", "normalize")
