"""Read device registrations in bulk from JSON or CSV.

JSON: a list of devices as the API takes them, or `{"devices": [...]}` as the FIWARE IoT Agents
take them. CSV: one device per row with the columns `id, apiKey, entityId, entityType, context,
protocol, transport, attributes, staticAttributes, commands, reportingInterval, timestampField,
allowUnknownFields, deviceEntityId, name`; empty cells are left out. `attributes` is either the
JSON list of mappings or the short form `t=temperature:CEL; h=relativeHumidity:P1` (field =
attribute, then `:unit`); `context` and `commands` are lists separated by spaces or `;`;
`staticAttributes` is a JSON object.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Final

import orjson

from smartcity.core.errors import BadRequestData

CSV_COLUMNS: Final = (
    "id",
    "apiKey",
    "entityId",
    "entityType",
    "context",
    "protocol",
    "transport",
    "attributes",
    "staticAttributes",
    "commands",
    "reportingInterval",
    "timestampField",
    "allowUnknownFields",
    "deviceEntityId",
    "name",
)
_SPLIT: Final = re.compile(r"[;\s]+")
Item = dict[str, Any] | BadRequestData
"""A device to register, or what is wrong with the row or item that should have been one."""


def items_from_json(data: bytes) -> list[Item]:
    """Read a JSON list of devices (or `{"devices": [...]}`)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise BadRequestData(f"the device list is not JSON: {error}") from None
    if isinstance(document, dict) and isinstance(document.get("devices"), list):
        document = document["devices"]
    if not isinstance(document, list):
        raise BadRequestData('send a JSON list of devices, or {"devices": [...]}')
    return [
        item if isinstance(item, dict) else BadRequestData("a device must be a JSON object")
        for item in document
    ]


def items_from_csv(text: str) -> list[Item]:
    """Read devices from CSV with a header row naming the columns."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    unknown = sorted(set(reader.fieldnames or ()) - set(CSV_COLUMNS))
    if not reader.fieldnames or "id" not in reader.fieldnames:
        raise BadRequestData(f"the CSV needs a header row with at least id; columns: {CSV_COLUMNS}")
    if unknown:
        raise BadRequestData(
            f"unknown CSV column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"
        )
    items: list[Item] = []
    for row in reader:
        try:
            items.append(_device_of_row(row))
        except BadRequestData as error:
            items.append(BadRequestData(f"row {reader.line_num - 1}: {error.detail}"))
    return items


def read_items(path: Path) -> list[Item]:
    """Read a .json or .csv file of devices."""
    data = path.read_bytes()
    if path.suffix.lower() == ".csv":
        return items_from_csv(data.decode("utf-8-sig"))
    if path.suffix.lower() == ".json":
        return items_from_json(data)
    raise BadRequestData(f"{path.name}: import .json or .csv files")


def _device_of_row(row: dict[str, str | None]) -> dict[str, Any]:
    cells = {key: value.strip() for key, value in row.items() if key and value and value.strip()}
    device: dict[str, Any] = {}
    entity: dict[str, Any] = {}
    for key, value in cells.items():
        if key == "entityId":
            entity["id"] = value
        elif key == "entityType":
            entity["type"] = value
        elif key == "context":
            entity["context"] = _SPLIT.split(value)
        elif key == "commands":
            device["commands"] = _SPLIT.split(value)
        elif key == "attributes":
            device["attributes"] = _attributes(value)
        elif key == "staticAttributes":
            device["staticAttributes"] = _json(value, key)
        elif key == "reportingInterval":
            device[key] = _number(value, key)
        elif key == "allowUnknownFields":
            device[key] = value.lower() in ("true", "yes", "1")
        else:
            device[key] = value
    if entity:
        device["entity"] = entity
    return device


def _attributes(text: str) -> Any:
    if text.startswith("["):
        return _json(text, "attributes")
    mappings = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        field, equals, target = part.partition("=")
        if not equals or not field.strip() or not target.strip():
            raise BadRequestData(
                f"attributes: {part!r} is not field=attribute[:unit] (e.g. t=temperature:CEL)"
            )
        name, _, unit = target.partition(":")
        mapping: dict[str, Any] = {"objectId": field.strip(), "name": name.strip()}
        if unit.strip():
            mapping["unit"] = unit.strip()
        mappings.append(mapping)
    return mappings


def _json(text: str, column: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise BadRequestData(f"{column}: not JSON ({error})") from None


def _number(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadRequestData(f"{column}: {text!r} is not a number of seconds") from None
