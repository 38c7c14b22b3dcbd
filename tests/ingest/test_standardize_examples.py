"""Every shared Smart Data Models example passes the standardizer; broken copies fail."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartcity.ingest.ports import Rejected
from smartcity.ingest.standardize import SmartDataStandardizer
from tests.conftest import SHARED_DATA

EXAMPLES = sorted((SHARED_DATA / "smart-data-models").glob("*/*/example-normalized.jsonld"))
Attributes = dict[str, Any]


def _set(path: list[str | int], value: Any) -> Callable[[Attributes], None]:
    def change(attributes: Attributes) -> None:
        node: Any = attributes
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return change


# Examples published with the models that break their own schema (at the commits listed in
# shared/data/README.md): (reason, path) of every attribute refused, in the order met. The
# standardizer must refuse exactly these, and accept every other attribute of the example.
KNOWN_DEFECTS: dict[str, list[tuple[str, str]]] = {
    # hr 75.5 where the schema wants an integer
    "PolarH10": [("schema", "hr")],
    # NGSI-LD Properties nested inside the value of a Property
    "SenseHat": [("schema", "accelerometer.z")],
    # windDirection 186 (the schema says -180..180); tsp 73.3 where an integer is wanted
    "AirQualityObserved": [("out-of-range", "windDirection"), ("schema", "tsp")],
    # observedAt '2020-03-17TT08:45:00+00:00'; a Relationship with "Object" for "object"
    "PhreaticObserved": [
        ("time", "depth.observedAt"),
        ("time", "pressure.observedAt"),
        ("schema", "refDevice"),
        ("time", "waterTable.observedAt"),
    ],
    # 'onstreet' for 'onStreet'; the text 'null' for an object; a text for an array
    "ParkingGroup": [
        ("schema", "category[0]"),
        ("schema", "permitActiveHours"),
        ("schema", "requiredPermit"),
    ],
    # 'license plate' for 'licensePlate'; an object where an array is wanted
    "APDSObservation": [("schema", "observedCredentialType"), ("schema", "images[3]")],
    # a GeoJSON-like object for a list of names; a text where an object is wanted
    "AnprFlowObserved": [("schema", "zonesServed"), ("schema", "observedVehicle.plateColor")],
    # a text for a ContactPoint; closes '17.00'; endDate at hour 24; 'underGround'
    "CityWork": [
        ("schema", "contactPoint"),
        ("schema", "openingHoursSpecification[5].closes"),
        ("time", "workDisposition.value[1].endDate"),
        ("schema", "workLevel[1]"),
    ],
    # '' where a number is wanted
    "ElectricVehicleMobility": [("schema", "averageDistanceKm")],
    # 'yatching' for 'yacht'
    "ItemFlowObserved": [("schema", "itemType")],
    # a text with spaces where a URI is wanted
    "RestrictedTrafficArea": [("schema", "regulation")],
    # five days in one dayOfWeek; a name and a URL without a scheme for URIs; nested
    # Properties; constructionDate '2016-19-08'
    "TransportStation": [
        ("schema", "openingHoursSpecification[0].dayOfWeek"),
        ("schema", "owner[0]"),
        ("schema", "contactPoint.url"),
        ("schema", "stationConnected[2].linesConnected"),
        ("schema", "services.wheelChairAccessible"),
        ("time", "constructionDate.value"),
    ],
    # 'Connected' for 'connected'; a number where a text is wanted
    "Vehicle": [("schema", "deviceBatteryStatus"), ("schema", "vehicleAltitude")],
}


def _example(path: Path) -> tuple[str, Attributes]:
    entity = orjson.loads(path.read_bytes())
    attributes = {k: v for k, v in entity.items() if k not in ("id", "type", "@context")}
    return entity["type"], attributes


def _model(path: Path) -> str:
    return path.parent.name


def test_the_shared_examples_are_all_there() -> None:
    assert len(EXAMPLES) == 77
    assert set(KNOWN_DEFECTS) <= {_model(path) for path in EXAMPLES}


def _refusals(
    standardizer: SmartDataStandardizer, entity_type: str, attributes: Attributes
) -> list[tuple[str, str]]:
    """Standardize, dropping each attribute refused, until the rest passes; list the refusals."""
    refused: list[tuple[str, str]] = []
    while True:
        try:
            result = standardizer.standardize("", entity_type, copy.deepcopy(attributes), [])
        except Rejected as error:
            path = error.path or "(no path)"
            refused.append((error.reason, path))
            del attributes[path.split(".")[0].split("[")[0]]
        else:
            assert set(result) == set(attributes)
            return refused


@pytest.mark.parametrize("path", EXAMPLES, ids=_model)
def test_example_passes_but_for_its_known_defects(
    path: Path, standardizer: SmartDataStandardizer
) -> None:
    entity_type, attributes = _example(path)
    expected = KNOWN_DEFECTS.get(_model(path), [])
    assert _refusals(standardizer, entity_type, attributes) == expected


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if _model(p) not in KNOWN_DEFECTS], ids=_model
)
def test_standardizing_twice_changes_nothing(
    path: Path, standardizer: SmartDataStandardizer
) -> None:
    entity_type, attributes = _example(path)
    once = standardizer.standardize("", entity_type, attributes, [])
    assert standardizer.standardize("", entity_type, copy.deepcopy(once), []) == once


def _example_of(model: str) -> tuple[str, Attributes]:
    (path,) = [p for p in EXAMPLES if _model(p) == model]
    return _example(path)


BROKEN = [
    pytest.param(
        "OffStreetParking",
        _set(["availableSpotNumber", "value"], -3),
        ("out-of-range", "validate", "availableSpotNumber"),
        id="negative-count",
    ),
    pytest.param(
        "OffStreetParking",
        _set(["occupancy", "value"], 1.4),
        ("out-of-range", "validate", "occupancy"),
        id="fraction-above-one",
    ),
    pytest.param(
        "Streetlight",
        _set(["powerState", "value"], "blinking"),
        ("schema", "validate", "powerState"),
        id="not-in-enum",
    ),
    pytest.param(
        "Streetlight",
        _set(["lanternHeight", "value"], "ten"),
        ("schema", "validate", "lanternHeight"),
        id="text-for-number",
    ),
    pytest.param(
        "NoiseLevelObserved",
        _set(["dateObservedFrom", "value"], "yesterday at noon"),
        ("time", "normalize", "dateObservedFrom.value"),
        id="unreadable-time",
    ),
    pytest.param(
        "TrafficFlowObserved",
        _set(["location", "value", "coordinates", 1], [-4.73, 141.66]),
        ("out-of-range", "normalize", "location.value.coordinates"),
        id="latitude-beyond-90",
    ),
    pytest.param(
        "NoiseLevelObserved",
        lambda a: a["LAeq"].update(unitCode="furlong"),
        ("unit", "normalize", "LAeq.unitCode"),
        id="unknown-unit",
    ),
    pytest.param(
        "OffStreetParking",
        _set(["address", "value", "addressLocality"], 42),
        ("schema", "validate", "address.addressLocality"),
        id="member-of-a-structured-value",
    ),
]


@pytest.mark.parametrize(("model", "breaks", "expected"), BROKEN)
def test_a_broken_copy_is_refused_with_reason_stage_and_path(
    model: str,
    breaks: Callable[[Attributes], None],
    expected: tuple[str, str, str],
    standardizer: SmartDataStandardizer,
) -> None:
    entity_type, attributes = _example_of(model)
    breaks(attributes)
    with pytest.raises(Rejected) as refused:
        standardizer.standardize("", entity_type, attributes, [])
    error = refused.value
    assert (error.reason, error.stage, error.path) == expected
    assert expected[2] in error.message
