"""Rule sets from YAML: what loads, and errors that give the line and the fix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.rules.loader import RuleSetError, builtin_rule_set, load_rule_set_text
from smartcity.rules.model import parse_threshold, to_seconds


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(RuleSetError) as caught:
        load_rule_set_text(text, "test.yaml")
    return [(p.line, p.path, p.message) for p in caught.value.problems]


def test_a_typo_in_a_key_names_the_line_and_the_likely_key() -> None:
    text = """rules:
  - id: bins
    kind: threshold
    when: {type: WasteContainer}
    valeu: fillingLevel
    raise: ">= 0.9"
"""
    found = problems(text)
    assert (5, "rules[0].valeu") in [(line, path) for line, path, _ in found]
    message = next(m for _, path, m in found if path == "rules[0].valeu")
    assert "did you mean 'value'?" in message


def test_a_bad_q_condition_names_its_line() -> None:
    text = """rules:
  - id: bins
    kind: match
    when:
      type: WasteContainer
      q: fillingLevel>>0.9
"""
    [(line, path, message)] = problems(text)
    assert (line, path) == (6, "rules[0].when.q")
    assert "q language" in message


def test_unknown_zone_and_calendar_say_what_is_known() -> None:
    text = """zones:
  arena: {type: Polygon, coordinates: [[[127.05, 37.65], [127.06, 37.65],
      [127.06, 37.66], [127.05, 37.65]]]}
rules:
  - id: a
    kind: match
    when: {type: Camera, inside: arnea}
    schedule: {calendar: event-days}
"""
    found = problems(text)
    messages = {path: message for _, path, message in found}
    assert "unknown zone 'arnea'" in messages["rules[0].when.inside"]
    assert "(known: arena)" in messages["rules[0].when.inside"]
    assert "unknown calendar 'event-days'" in messages["rules[0].schedule"]


def test_a_rule_missing_the_parts_of_its_kind() -> None:
    text = """rules:
  - id: t
    kind: threshold
    when: {type: WasteContainer}
"""
    [(line, _, message)] = problems(text)
    assert line == 2
    assert "needs value and raise" in message


def test_broken_yaml_names_the_line() -> None:
    [(line, path, message)] = problems("rules:\n  - id: a\n    kind: [match\n")
    assert path == "(yaml)"
    assert line is not None
    assert "not valid YAML" in message


def test_aggregates_having_and_templates_are_checked() -> None:
    text = """rules:
  - id: a
    kind: aggregate
    when: {type: TrafficFlowObserved}
    window: {size: 10m}
    aggregates: {speed: median(averageVehicleSpeed)}
    having: sped<10
    actions:
      - alert: {description: "{{ __import__ }}"}
"""
    messages = {path: message for _, path, message in problems(text)}
    assert "not an aggregate" in messages["rules[0].aggregates.speed"]
    assert "'sped' is not one of the aggregates" in messages["rules[0].having"]
    assert "is not offered" in messages["rules[0].actions[0].alert"]


def test_duplicate_rule_ids() -> None:
    text = """rules:
  - {id: a, kind: match, when: {type: Camera}}
  - {id: a, kind: match, when: {type: Camera}}
"""
    [(line, path, message)] = problems(text)
    assert (line, path) == (3, "rules[1].id")
    assert "used twice" in message


def test_an_error_is_a_400_problem_with_every_problem_listed() -> None:
    with pytest.raises(RuleSetError) as caught:
        load_rule_set_text("rules:\n  - {id: A!, kind: nope}\n", "x.yaml")
    body = caught.value.to_problem()
    assert body["status"] == 400
    assert len(body["problems"]) >= 2


def test_the_builtin_rules_load() -> None:
    rule_set = builtin_rule_set()
    ids = {rule.id for rule in rule_set.rules}
    assert {"concert-egress-congestion", "assault-at-night", "waste-bin-full", "pm10-watch"} <= ids
    assert {"arena-egress", "fire-access-roads"} <= set(rule_set.zones)


@given(st.integers(min_value=0, max_value=10_000), st.sampled_from(["s", "m", "h", "d"]))
def test_durations_in_short_and_iso_form_agree(number: int, unit: str) -> None:
    seconds = to_seconds(f"{number}{unit}")
    iso = {"s": f"PT{number}S", "m": f"PT{number}M", "h": f"PT{number}H", "d": f"P{number}D"}[unit]
    assert seconds == to_seconds(iso)


@given(st.text(max_size=12))
def test_duration_parser_accepts_or_explains(text: str) -> None:
    try:
        seconds = to_seconds(text)
    except ValueError as error:
        message = str(error)
        assert message
    else:
        assert seconds >= 0


@given(st.sampled_from([">=", "<=", ">", "<", "==", "!="]), st.floats(-1e6, 1e6, allow_nan=False))
def test_thresholds_read_back(op: str, number: float) -> None:
    assert parse_threshold(f"{op} {number!r}") == (op, number)
