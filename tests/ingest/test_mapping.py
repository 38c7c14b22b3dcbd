"""Mapping a device's fields to attributes: types, conversions, safe expressions, places, links,
and the policy for fields nobody mapped."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from smartcity.ingest.codecs import Measure
from smartcity.ingest.device_model import Device, DeviceSpec
from smartcity.ingest.mapping import map_measure
from smartcity.ingest.ports import Rejected
from smartcity.storage.devices import DeviceRecord

AT = "2026-11-28T01:00:00Z"


def device(*mappings: dict[str, Any], **spec: Any) -> Device:
    body = {
        "id": "dev-1",
        "entity": {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"},
        "attributes": list(mappings),
        **spec,
    }
    doc = DeviceSpec.model_validate(body).stored_doc()
    record = DeviceRecord("", "dev-1", "hash", doc, "urn:ngsi-ld:Thing:1", "mqtt", None, AT, AT)
    return Device(record)


def attributes(dev: Device, **fields: Any) -> dict[str, Any]:
    return map_measure(dev, Measure(fields), AT).attributes


def refused(dev: Device, **fields: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        map_measure(dev, Measure(fields), AT)
    return caught.value


def test_values_are_typed_and_converted() -> None:
    dev = device(
        {"objectId": "t", "name": "temperature", "unit": "CEL"},
        {"objectId": "c", "name": "count", "valueType": "integer"},
        {"objectId": "s", "name": "status", "valueType": "text"},
        {"objectId": "on", "name": "powerState", "valueType": "boolean"},
        {"objectId": "l", "name": "illuminance", "scale": 0.1, "offset": -2},
        {"objectId": "j", "name": "config", "valueType": "json"},
    )
    got = attributes(dev, t="21.5", c="12", s=404, on="on", l="1005", j='{"mode": "eco"}')
    assert got["temperature"] == {
        "type": "Property",
        "value": 21.5,
        "unitCode": "CEL",
        "observedAt": AT,
    }
    values = {name: attribute["value"] for name, attribute in got.items()}
    assert values == {
        "temperature": 21.5,
        "count": 12,
        "status": "404",
        "powerState": True,
        "illuminance": 98.5,
        "config": {"mode": "eco"},
    }


@pytest.mark.parametrize(
    ("mapping", "value", "says"),
    [
        ({"valueType": "number"}, "warm", "must be a number"),
        ({"valueType": "integer"}, "2.5", "must be a whole number"),
        ({"valueType": "boolean"}, "maybe", "must be true or false"),
        ({"scale": 2}, "x", "must be a number to scale"),
        ({"expression": "value / 0"}, "1", "failed on value 1"),
        ({"expression": "value ** 99999"}, "9", "gave int, not a JSON value"),
        ({"expression": "value.__class__"}, "1", "failed on value 1"),
        ({"valueType": "number"}, "1e999", "which no JSON can hold"),
    ],
)
def test_a_value_that_cannot_be_converted_is_refused(
    mapping: dict[str, Any], value: str, says: str
) -> None:
    dev = device({"objectId": "v", "name": "value", **mapping})
    problem = refused(dev, v=value)
    assert (problem.reason, problem.stage, problem.path) == ("conversion", "map", "v")
    assert says in problem.message


def test_expressions_see_the_value_and_the_other_fields_but_nothing_else() -> None:
    dev = device(
        {"objectId": "f", "name": "temperature", "expression": "round((value - 32) / 1.8, 1)"},
        {"objectId": "w", "name": "power", "expression": "value * v if v else 0"},
    )
    got = attributes(dev, f="98.6", w="2", v="230")
    assert (got["temperature"]["value"], got["power"]["value"]) == (37.0, 460)
    with pytest.raises(ValueError, match="is not valid"):
        device({"objectId": "x", "name": "x", "expression": "import os"})
    escape = device({"objectId": "x", "name": "x", "expression": "open('/etc/passwd').read()"})
    assert refused(escape, x="1").reason == "conversion"


def test_places_and_links() -> None:
    dev = device(
        {"objectId": "p", "name": "location", "kind": "GeoProperty"},
        {"objectId": "g", "name": "gps", "kind": "GeoProperty", "coordinates": "lat,lon"},
        {"objectId": "r", "name": "refRoad", "kind": "Relationship"},
    )
    got = attributes(dev, p="127.0477, 37.6531", g=[37.6531, 127.0477], r="urn:ngsi-ld:Road:1")
    point = {"type": "Point", "coordinates": [127.0477, 37.6531]}
    assert got["location"] == {"type": "GeoProperty", "value": point, "observedAt": AT}
    assert got["gps"]["value"] == point
    assert got["refRoad"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:Road:1",
        "observedAt": AT,
    }
    assert "must be a point" in refused(dev, p="north").message
    assert "must be an entity id" in refused(dev, r="road 1").message


def test_unknown_fields_are_ignored_and_counted_unless_the_device_allows_them() -> None:
    strict = device({"objectId": "t", "name": "temperature"})
    mapped = map_measure(strict, Measure({"t": "1", "rssi": "-70"}), AT)
    assert (list(mapped.attributes), mapped.ignored) == (["temperature"], ["rssi"])
    problem = refused(strict, rssi="-70")
    assert problem.reason == "unmapped"
    assert "it sent rssi; mapped fields are t" in problem.message
    lenient = device({"objectId": "t", "name": "temperature"}, allowUnknownFields=True)
    mapped = map_measure(lenient, Measure({"t": "1", "rssi": "-70", "bad name": "1"}), AT)
    assert mapped.attributes["rssi"]["value"] == -70
    assert mapped.ignored == ["bad name"]


def test_expressions_parse_safely_in_many_threads_at_once() -> None:
    # CPython 3.11 fails now and then (SystemError: AST constructor recursion depth mismatch)
    # when threads parse at once; agents load devices in several threads.
    from smartcity.ingest.device_model import parse_expression

    failures: list[BaseException] = []

    def parse_many(worker: int) -> None:
        for number in range(2000):
            text = f"'on' if value == {number} else round((value - 32) / 1.8 + {worker}, 2)"
            try:
                parse_expression(text)
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=parse_many, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
