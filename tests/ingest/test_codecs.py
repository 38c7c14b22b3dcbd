"""Payload codecs: JSON measures and UltraLight 2.0, measures and commands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.clock import isoformat
from smartcity.ingest.codecs import (
    CommandResult,
    Measure,
    decode_json_measures,
    decode_json_results,
    decode_json_value,
    decode_ul_command,
    decode_ul_measures,
    decode_ul_results,
    encode_json_command,
    encode_ul_command,
    encode_ul_measures,
)
from smartcity.ingest.ports import Rejected


def rejected(call: object, payload: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        call(payload)  # type: ignore[operator]
    assert caught.value.reason == "unparsable"
    assert caught.value.stage == "decode"
    return caught.value


def test_json_measures_with_and_without_a_timestamp() -> None:
    assert decode_json_measures(b'{"t": 21.5, "h": 40}') == [Measure({"t": 21.5, "h": 40})]
    measures = decode_json_measures(
        b'[{"t": 1, "TimeInstant": "2026-11-28T10:00:00+09:00"}, {"t": 2}]'
    )
    assert measures == [Measure({"t": 1}, "2026-11-28T10:00:00+09:00"), Measure({"t": 2})]
    own_field = decode_json_measures(b'{"t": 1, "ts": 1700000000}', "ts")
    assert own_field == [Measure({"t": 1}, 1700000000)]


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b'{"t": 21.5,', "not JSON"),
        (b"[]", "empty list"),
        (b"21.5", "must be a JSON object of field: value, not a number"),
        (b'[{"t": 1}, "x"]', "measure 2 must be a JSON object"),
        (b'{"TimeInstant": "2026-11-28T01:00:00Z"}', "no field besides its timestamp"),
    ],
)
def test_bad_json_says_what_is_wrong_where(payload: bytes, says: str) -> None:
    assert says in rejected(decode_json_measures, payload).message


def test_ultralight_groups_with_an_optional_leading_timestamp() -> None:
    assert decode_ul_measures(b"t|21.5|h|40") == [Measure({"t": "21.5", "h": "40"})]
    assert decode_ul_measures(b"2026-11-28T01:00:00Z|t|21.5#t|22\n") == [
        Measure({"t": "21.5"}, "2026-11-28T01:00:00Z"),
        Measure({"t": "22"}),
    ]
    assert decode_ul_measures("s|창동역".encode()) == [Measure({"s": "창동역"})]


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"", "empty"),
        (b"t|21.5#", "UltraLight group 2 is empty"),
        (b"t", "single field"),
        (b"t|21.5|h", "first one must be an ISO 8601 timestamp, but 't' is not"),
        (b"t|1|t|2", "field 't' appears twice"),
        (b"t||h|2", "field 't' has no value"),
        (b"|1", "a field name is empty"),
        (b"t|1#x|2|y", "UltraLight group 2 ('x|2|y') has an odd number of fields"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_ultralight_says_what_is_wrong_where(payload: bytes, says: str) -> None:
    assert says in rejected(decode_ul_measures, payload).message


UL_TEXT = st.text(
    alphabet=st.characters(
        blacklist_characters="|#@", blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")
    ),
    min_size=1,
    max_size=12,
)
TIMESTAMPS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(isoformat)
GROUPS = st.builds(
    Measure,
    st.dictionaries(UL_TEXT, UL_TEXT, min_size=1, max_size=6),
    st.none() | TIMESTAMPS,
)


@given(st.lists(GROUPS, min_size=1, max_size=5))
def test_ultralight_measures_round_trip(measures: list[Measure]) -> None:
    assert decode_ul_measures(encode_ul_measures(measures)) == measures


@given(st.lists(UL_TEXT, max_size=4))
def test_ultralight_commands_round_trip(params: list[str]) -> None:
    command = decode_ul_command(encode_ul_command("lamp-7", "dim", params))
    assert (command.device_id, command.name, command.params) == ("lamp-7", "dim", params)


def test_a_separator_in_an_ultralight_value_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError, match="separator"):
        encode_ul_measures([Measure({"t": "1|2"})])


def test_commands_and_their_results() -> None:
    assert encode_json_command("dim", {"level": 30}) == b'{"dim":{"level":30}}'
    assert encode_ul_command("lamp-7", "dim", {"level": 30}) == b"lamp-7@dim|level=30"
    assert encode_ul_command("lamp-7", "reset", None) == b"lamp-7@reset"
    assert decode_ul_results(b"lamp-7@dim|ok") == [CommandResult("dim", True, "ok")]
    assert decode_ul_results(b"lamp-7@dim|ERROR|lamp broken") == [
        CommandResult("dim", False, "lamp broken")
    ]
    assert decode_json_results(b'{"dim": "30%"}') == [CommandResult("dim", True, "30%")]
    failure = {"status": "error", "info": "no power"}
    assert decode_json_results(b'{"dim": {"status": "error", "info": "no power"}}') == [
        CommandResult("dim", False, failure)
    ]
    assert "must start with <device>@<command>" in rejected(decode_ul_results, b"dim|ok").message
    assert "JSON object" in rejected(decode_json_results, b"[1]").message


def test_a_single_attribute_value_is_json_or_text() -> None:
    assert decode_json_value(b"21.5") == 21.5
    assert decode_json_value(b'{"type": "Point", "coordinates": [127.05, 37.65]}') == {
        "type": "Point",
        "coordinates": [127.05, 37.65],
    }
    assert decode_json_value(b" on \n") == "on"


def test_an_ultralight_timestamp_is_kept_as_sent_for_the_standardizer() -> None:
    assert decode_ul_measures(b"2026-11-28T10:00:00|t|1")[0].observed_at == "2026-11-28T10:00:00"
    assert "2026-13-01T00:00:00" in rejected(decode_ul_measures, b"2026-13-01T00:00:00|t|1").message
