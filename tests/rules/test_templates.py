"""Templates render values by name and never run code."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smartcity.rules.templates import check_template, render

SCOPE = {
    "values": {"avg_speed": 12.345, "n": 3},
    "entity": {"id": "urn:ngsi-ld:Camera:c1", "name": "창동역 CCTV"},
    "targets": ["l1", "l2"],
    "key": "arena",
}


def test_placeholders_filters_and_types() -> None:
    assert render("{{ values.avg_speed | round(1) }} km/h", SCOPE) == "12.3 km/h"
    assert render("{{ values.n }}", SCOPE) == 3
    assert render("{{ targets }}", SCOPE) == ["l1", "l2"]
    assert render({"a": ["{{ entity.name }}", 5]}, SCOPE) == {"a": ["창동역 CCTV", 5]}
    assert render("{{ values.missing | default('-') }}", SCOPE) == "-"
    assert render("{{ targets | join(', ') }}", SCOPE) == "l1, l2"
    assert render("{{ values.n | percent }}", SCOPE) == "300%"
    assert render("{{ values.nothing }}x", SCOPE) == "x"


def test_code_is_refused() -> None:
    assert check_template("{{ __import__('os') }}") is not None
    assert check_template("{{ values.x | system }}") is not None
    assert check_template("{{ entity.__class__ }}") is None  # a plain lookup, which finds nothing
    assert render("{{ entity.__class__ }}", SCOPE) is None


@given(st.text(max_size=40))
def test_any_text_renders_or_is_reported(text: str) -> None:
    problem = check_template(text)
    if problem is None:
        render(text, SCOPE)
