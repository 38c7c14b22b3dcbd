"""Payload codecs of the FIWARE IoT Agents: JSON measures and UltraLight 2.0, with commands.

JSON measures are an object of field: value (`{"t": 21.5, "h": 40}`), or a list of such objects
(several measures in one message); a field (by default `TimeInstant`) may say when it was
observed. UltraLight 2.0 is text: `t|21.5|h|40`, measure groups separated by `#`, each group
optionally led by an ISO 8601 timestamp (`2026-11-28T01:00:00Z|t|21.5`). Commands travel as
`{"dim": {"level": 30}}` or `lamp-7@dim|level=30`, and their results as `{"dim": "ok"}` or
`lamp-7@dim|ok`.

Whatever cannot be read raises `Rejected(reason="unparsable", stage="decode")` whose message says
what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from smartcity.ingest.ports import Rejected

UNPARSABLE: Final = "unparsable"
UL_RESERVED: Final = frozenset("|#@")
"""Characters UltraLight 2.0 uses as separators; it has no escaping, so values cannot hold them."""
MAX_MEASURES: Final = 1000
"""The most measures one message may carry."""


@dataclass(frozen=True, slots=True)
class Measure:
    """One decoded measure: device fields, and when it was observed if the payload says."""

    fields: dict[str, Any]
    observed_at: Any = None
    """The time as the device sent it (ISO 8601 text, or epoch seconds in JSON), or None (the
    receive time is used); the standardizer brings it to UTC."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A device's answer to a command (`/cmdexe`)."""

    name: str
    ok: bool
    info: Any


@dataclass(frozen=True, slots=True)
class UlCommand:
    """One UltraLight command line: `device@name|param|param...`."""

    device_id: str
    name: str
    params: list[str] = field(default_factory=list)


def _unparsable(message: str, path: str | None = None) -> Rejected:
    return Rejected(UNPARSABLE, message, stage="decode", path=path)


def is_iso_time(text: str) -> bool:
    """Tell whether a text is an ISO 8601 date-time (with or without an offset)."""
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return "T" in text or " " in text.strip()


def _text(payload: bytes, what: str) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _unparsable(f"{what} is not UTF-8 text (byte {error.start})") from None


# -- JSON -------------------------------------------------------------------------------------


def decode_json_measures(payload: bytes, timestamp_field: str = "TimeInstant") -> list[Measure]:
    """Decode a JSON measure object, or a list of them."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise _unparsable(f"the payload is not JSON: {error}") from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise _unparsable("the payload is an empty list: no measure in it")
    if len(items) > MAX_MEASURES:
        raise _unparsable(f"{len(items)} measures in one message; at most {MAX_MEASURES}")
    measures = []
    for number, item in enumerate(items, start=1):
        where = "the payload" if len(items) == 1 else f"measure {number}"
        if not isinstance(item, dict):
            raise _unparsable(
                f"{where} must be a JSON object of field: value, not {_kind(item)}", where
            )
        fields = dict(item)
        stamp = fields.pop(timestamp_field, None)
        if not fields:
            raise _unparsable(f"{where} has no field besides its timestamp", where)
        measures.append(Measure(fields, stamp))
    return measures


def decode_json_value(payload: bytes) -> Any:
    """Decode the value sent on a single-attribute topic: JSON if it is, else the text."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _text(payload, "the value").strip()


def encode_json_command(name: str, params: Any) -> bytes:
    """Encode a command for a JSON device: `{"<name>": <params>}`."""
    return orjson.dumps({name: params})


def decode_json_results(payload: bytes) -> list[CommandResult]:
    """Decode a JSON command answer: `{"<name>": <result>}`, one member per command.

    A result that is an object with `"status": "error"` (or `"ERROR"`) is a failure; anything
    else is success, its value the command's info.
    """
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise _unparsable(f"the command answer is not JSON: {error}") from None
    if not isinstance(document, dict) or not document:
        raise _unparsable('a command answer must be a JSON object like {"dim": "ok"}')
    results = []
    for name, result in document.items():
        failed = isinstance(result, dict) and str(result.get("status", "")).lower() == "error"
        results.append(CommandResult(name, not failed, result))
    return results


# -- UltraLight 2.0 ---------------------------------------------------------------------------


def decode_ul_measures(payload: bytes) -> list[Measure]:
    """Decode UltraLight 2.0 measure groups (`t|21.5|h|40#t|22`), values as text."""
    text = _text(payload, "the UltraLight payload").strip()
    if not text:
        raise _unparsable("the UltraLight payload is empty")
    groups = text.split("#")
    if len(groups) > MAX_MEASURES:
        raise _unparsable(f"{len(groups)} measure groups in one message; at most {MAX_MEASURES}")
    return [_ul_group(group, number, len(groups)) for number, group in enumerate(groups, start=1)]


def _ul_group(group: str, number: int, count: int) -> Measure:
    where = "the UltraLight payload" if count == 1 else f"UltraLight group {number}"
    parts = group.split("|")
    if not group.strip():
        raise _unparsable(f"{where} is empty (two '#' in a row, or one at an end)", where)
    observed = None
    if len(parts) % 2 == 1:
        if len(parts) == 1:
            raise _unparsable(
                f"{where} ({_clip(group)}) has a single field; measures are key|value pairs", where
            )
        observed = _ul_timestamp(parts[0], where, group)
        parts = parts[1:]
    fields: dict[str, Any] = {}
    for index in range(0, len(parts), 2):
        key, value = parts[index].strip(), parts[index + 1].strip()
        if not key:
            raise _unparsable(f"{where} ({_clip(group)}): a field name is empty", where)
        if key in fields:
            raise _unparsable(f"{where} ({_clip(group)}): field {key!r} appears twice", where)
        if not value:
            raise _unparsable(f"{where} ({_clip(group)}): field {key!r} has no value", key)
        fields[key] = value
    return Measure(fields, observed)


def _ul_timestamp(text: str, where: str, group: str) -> str:
    if not is_iso_time(text):
        raise _unparsable(
            f"{where} ({_clip(group)}) has an odd number of fields, so its first one must be an "
            f"ISO 8601 timestamp, but {_clip(text)} is not; measures are key|value pairs",
            where,
        )
    return text.strip()


def encode_ul_measures(measures: Sequence[Measure]) -> bytes:
    """Encode measure groups as UltraLight 2.0 (the inverse of `decode_ul_measures`)."""
    groups = []
    for measure in measures:
        parts = [] if measure.observed_at is None else [measure.observed_at]
        for key, value in measure.fields.items():
            parts.extend((key, _ul_value(value)))
        groups.append("|".join(parts))
    return "#".join(groups).encode()


def _ul_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if UL_RESERVED.intersection(text):
        raise ValueError(f"{text!r} holds an UltraLight separator (| # @) and cannot be sent")
    return text


def encode_ul_command(device_id: str, name: str, params: Any) -> bytes:
    """Encode a command for an UltraLight device: `device@name|k=v|...` (or `|value`)."""
    if params is None or params == {} or params == []:
        items: list[str] = []
    elif isinstance(params, Mapping):
        items = [f"{_ul_value(key)}={_ul_value(value)}" for key, value in params.items()]
    elif isinstance(params, list):
        items = [_ul_value(value) for value in params]
    else:
        items = [_ul_value(params)]
    return "|".join([f"{device_id}@{name}", *items]).encode()


def decode_ul_command(payload: bytes) -> UlCommand:
    """Decode one UltraLight command line (`device@name|param|...`)."""
    text = _text(payload, "the UltraLight command").strip()
    head, *params = text.split("|")
    device_id, at, name = head.partition("@")
    if not at or not device_id.strip() or not name.strip():
        raise _unparsable(
            f"UltraLight command {_clip(text)} must start with <device>@<command>, e.g. "
            "lamp-7@dim|ok"
        )
    return UlCommand(device_id.strip(), name.strip(), [p.strip() for p in params])


def decode_ul_results(payload: bytes) -> list[CommandResult]:
    """Decode an UltraLight command answer: `device@name|result` (`|ERROR|why` for a failure)."""
    command = decode_ul_command(payload)
    params = command.params
    if params and params[0].upper() == "ERROR":
        return [CommandResult(command.name, False, "|".join(params[1:]) or "ERROR")]
    return [CommandResult(command.name, True, "|".join(params))]


def _clip(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
