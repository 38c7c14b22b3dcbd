"""Compiled q conditions mean exactly what the broker's evaluator says they mean."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.entity import StoredEntity
from smartcity.core.qeval import evaluate
from smartcity.core.qlang import map_names, parse_q
from smartcity.rules.match import compile_q
from smartcity.rules.names import local_name, name_map

VOCAB = "https://smartdatamodels.org/dataModel.Test/"
NAMES = ["speed", "status", "level"]

scalars = st.one_of(
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["ok", "full", "2026-11-27T10:00:00Z", "a,b"]),
    st.booleans(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.fixed_dictionaries({"k": scalars}))


@st.composite
def entities(draw: st.DrawFn) -> StoredEntity:
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name in NAMES:
        instances = draw(st.lists(values, max_size=2))
        if instances:
            attrs[VOCAB + name] = [
                {"type": "Property", "value": v, "observedAt": "2026-11-27T10:00:00Z"}
                for v in instances
            ]
    return StoredEntity("urn:x:1", [VOCAB + "Thing"], attrs)


literal = st.one_of(
    st.integers(-5, 5).map(str),
    st.sampled_from(
        ['"ok"', '"full"', "true", "false", "2026-11-27T10:00:00Z", '"ok","full"', "1..3"]
    ),
)
path = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(lambda n: n + "[k]"),
    st.sampled_from(NAMES).map(lambda n: n + ".observedAt"),
)
leaf = st.one_of(
    st.builds(
        lambda p, op, v: f"{p}{op}{v}",
        path,
        st.sampled_from(["==", "!=", ">", ">=", "<", "<="]),
        literal,
    ),
    path,
    path.map(lambda p: "!" + p),
    st.builds(lambda p: f'{p}~="^o"', path),
)
expressions = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a};{b}", inner, inner),
        st.builds(lambda a, b: f"({a})|({b})", inner, inner),
    ),
    max_leaves=4,
)


@given(entities(), expressions)
def test_compiled_conditions_agree_with_the_broker(entity: StoredEntity, text: str) -> None:
    try:
        tree = parse_q(text)
    except Exception:
        return
    condition, _ = compile_q(text)
    expected = evaluate(map_names(tree, lambda name: VOCAB + name), entity)
    assert condition(entity, name_map(entity)) == expected


def test_names_match_by_local_name_whatever_the_vocabulary() -> None:
    merged_context = "https://smart-data-models.github.io/data-models/terms.jsonld#/definitions/"
    a = StoredEntity(
        "x",
        ["t"],
        {merged_context + "fillingLevel": [{"type": "Property", "value": 0.95}]},
    )
    b = StoredEntity(
        "y",
        ["t"],
        {
            "https://uri.etsi.org/ngsi-ld/default-context/fillingLevel": [
                {"type": "Property", "value": 0.95}
            ]
        },
    )
    condition, names = compile_q("fillingLevel>=0.9")
    assert names == {"fillingLevel"}
    assert condition(a, name_map(a))
    assert condition(b, name_map(b))
    assert local_name("https://smartdatamodels.org/dataModel.Parking/ParkingSpot") == "ParkingSpot"
