"""Tests of the Python evaluator of q, scopeQ and type selections."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.entity import StoredEntity
from smartcity.core.qeval import (
    evaluate,
    evaluate_scope,
    evaluate_types,
    literal_key,
    normalize_text,
    scope_matches,
)
from smartcity.core.qlang import (
    DateTime,
    ScopePattern,
    map_names,
    parse_q,
    parse_scope_q,
    parse_types,
)

VOCAB = "https://ex.org/"


def expand(name: str) -> str:
    """Expand a short name the way a @context with @vocab would."""
    return VOCAB + name


def prop(value: Any, **members: Any) -> dict[str, Any]:
    """Build a Property instance."""
    return {"type": "Property", "value": value, **members}


def make_entity(**attrs: dict[str, Any] | list[dict[str, Any]]) -> StoredEntity:
    """Build an entity whose attributes get expanded names; a list gives several instances."""
    return StoredEntity(
        id="urn:ngsi-ld:Thing:1",
        types=[VOCAB + "Thing"],
        attrs={
            expand(name): value if isinstance(value, list) else [value]
            for name, value in attrs.items()
        },
    )


def matches(q: str, entity: StoredEntity) -> bool:
    """Parse, expand and evaluate a q string."""
    return evaluate(map_names(parse_q(q), expand), entity)


# --- comparisons on Property values


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("speed==50", True),
        ("speed==50.0", True),
        ("speed!=50", False),
        ("speed!=49", True),
        ("speed>49.5", True),
        ("speed>=50", True),
        ("speed<50", False),
        ("speed<=50", True),
        ("speed==40..60", True),
        ("speed==51..60", False),
        ("speed!=51..60", True),
        ("speed==1,2,50", True),
        ("speed!=1,2,50", False),
        ('speed=="50"', False),
        ('speed!="50"', True),
        ("speed>2018-01-01T00:00:00Z", False),
        ("speed==true", False),
    ],
)
def test_numbers_compare_as_numbers(q: str, expected: bool) -> None:
    assert matches(q, make_entity(speed=prop(50))) is expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('name=="Bob"', True),
        ('name!="Bob"', False),
        ('name>"Al"', True),
        ('name<"Al"', False),
        ('name=="A".."C"', True),
        ('name=="Alice","Bob"', True),
        ("name==5", False),
        ("name>5", False),
        ("name~=^B", True),
        ("name~=(?i)^bob$", True),
        ("name~=^b", False),
        ("name!~=^b", True),
        ("name!~=o", False),
    ],
)
def test_strings_compare_as_strings(q: str, expected: bool) -> None:
    assert matches(q, make_entity(name=prop("Bob"))) is expected


def test_booleans_match_booleans_only() -> None:
    assert matches("on==true", make_entity(on=prop(True)))
    assert not matches("on==false", make_entity(on=prop(True)))
    assert matches("on!=false", make_entity(on=prop(True)))
    assert not matches("on==true", make_entity(on=prop("true")))
    assert not matches("on==1", make_entity(on=prop(True)))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("t==2020-01-01T12:00:00Z", True),
        ("t==2020-01-01T13:00:00+01:00", True),
        ("t==2020-01-01T12:00:00.000Z", True),
        ("t==2020-01-01T12:00:00", True),
        ("t>2020-01-01T12:30:00+01:00", True),
        ("t<2020-01-01T11:30:00-01:00", True),
        ("t>2020-01-01T12:00:00Z", False),
        ("t==2020-01-01T00:00:00Z..2020-01-02T00:00:00Z", True),
        ('t=="2020-01-01T14:00:00+02:00"', True),
        ("t>2019-12-31", True),
        ("t<2020-01-01", False),
    ],
)
def test_date_times_compare_as_moments(q: str, expected: bool) -> None:
    for value in ("2020-01-01T12:00:00Z", {"@type": "DateTime", "@value": "2020-01-01T12:00:00Z"}):
        assert matches(q, make_entity(t=prop(value))) is expected, value


def test_date_time_literal_never_orders_plain_strings() -> None:
    entity = make_entity(t=prop("zebra"))
    assert not matches("t>2020-01-01T00:00:00Z", entity)
    assert not matches("t==2020-01-01T00:00:00Z..2030-01-01T00:00:00Z", entity)
    assert matches('t>"2020-01-01T00:00:00Z"', entity)  # a quoted string orders as a string


def test_dates_and_times_compare_as_text() -> None:
    entity = make_entity(
        d=prop({"@type": "Date", "@value": "2020-05-01"}),
        h=prop({"@type": "Time", "@value": "12:30:00Z"}),
    )
    assert matches("d==2020-05-01", entity)
    assert matches("d==2020-01-01..2020-12-31", entity)
    assert matches("h>12:00:00Z", entity)
    assert not matches("h<12:00:00Z", entity)


def test_normalize_text() -> None:
    assert normalize_text("2020-01-01T13:00:00+01:00") == "2020-01-01T12:00:00.000000Z"
    assert normalize_text("2020-01-01T12:00:00") == "2020-01-01T12:00:00"
    assert normalize_text("0001-01-01T00:30:00+01:00") == "0001-01-01T00:30:00+01:00"
    assert normalize_text("hello") == "hello"
    assert literal_key(DateTime("2020-01-01T12:00")) == ("ts", "2020-01-01T12:00:00.000000Z")


# --- arrays, compound values, attribute types


def test_arrays_match_on_any_element() -> None:
    entity = make_entity(tags=prop(["red", "green", 3]))
    assert matches('tags=="green"', entity)
    assert matches("tags==3", entity)
    assert matches('tags>"blue"', entity)
    assert not matches('tags=="blue"', entity)
    assert matches('tags!="blue"', entity)
    assert not matches('tags!="red"', entity)
    assert matches("tags~=^gr", entity)
    assert not matches("tags!~=e", entity)


def test_compound_values_never_equal_a_literal() -> None:
    entity = make_entity(address=prop({"city": "Seoul", "zip": 1234}))
    assert not matches('address=="Seoul"', entity)
    assert matches('address!="Seoul"', entity)
    assert matches('address[city]=="Seoul"', entity)
    assert matches("address[zip]>1000", entity)
    assert not matches("address[street]", entity)
    assert matches("!address[street]", entity)


def test_brackets_go_into_each_element_of_an_array() -> None:
    entity = make_entity(parts=prop([{"k": 1}, {"k": 2}, "x"]))
    assert matches("parts[k]==2", entity)
    assert not matches("parts[k]==3", entity)
    assert matches("parts[k]", entity)


def test_relationships_compare_their_object() -> None:
    entity = make_entity(
        owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:Bob"},
        friends={
            "type": "Relationship",
            "object": ["urn:ngsi-ld:Person:A", "urn:ngsi-ld:Person:B"],
        },
    )
    assert matches("owner==urn:ngsi-ld:Person:Bob", entity)
    assert matches('owner=="urn:ngsi-ld:Person:Bob"', entity)
    assert not matches("owner==urn:ngsi-ld:Person:Alice", entity)
    assert matches("friends==urn:ngsi-ld:Person:B", entity)
    assert matches("owner~=Person:B", entity)


def test_language_list_and_other_properties() -> None:
    entity = make_entity(
        name={"type": "LanguageProperty", "languageMap": {"en": "Park", "ko": "공원"}},
        readings={"type": "ListProperty", "valueList": [1, 5, 9]},
        members={
            "type": "ListRelationship",
            "objectList": [{"object": "urn:a:1"}, {"object": "urn:a:2"}],
        },
        location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        kind={"type": "VocabProperty", "vocab": VOCAB + "Green"},
        extra={"type": "JsonProperty", "json": {"k": 1}},
    )
    assert matches('name=="공원"', entity)
    assert matches('name[en]=="Park"', entity)
    assert not matches('name[ko]=="Park"', entity)
    assert matches("readings==5", entity)
    assert matches("readings>8", entity)
    assert matches("members==urn:a:2", entity)
    assert not matches("location==1", entity)
    assert matches("location", entity)
    assert matches(f'kind=="{VOCAB}Green"', entity)
    assert matches("extra[k]==1", entity)


def test_any_instance_matches() -> None:
    entity = make_entity(
        speed=[prop(10), prop(90, datasetId="urn:ngsi-ld:Dataset:gps")],
    )
    assert matches("speed>50", entity)
    assert matches("speed<50", entity)
    assert matches("speed!=10", entity)
    assert not matches("speed==50", entity)
    assert matches('speed.datasetId=="urn:ngsi-ld:Dataset:gps"', entity)


def test_missing_attribute() -> None:
    entity = make_entity(speed=prop(10))
    for q in ("other==1", "other!=1", "other>0", "other~=.", "other!~=.", "other"):
        assert not matches(q, entity), q
    assert matches("!other", entity)
    assert not matches("!speed", entity)


# --- paths: sub-attributes, metadata, leniency


def test_sub_attributes_and_metadata() -> None:
    entity = make_entity(
        temperature=prop(
            21.5,
            observedAt="2020-06-01T10:00:00Z",
            unitCode="CEL",
            **{expand("accuracy"): prop(0.5, observedAt="2020-06-01T09:00:00Z")},
        )
    )
    assert matches("temperature.accuracy==0.5", entity)
    assert matches("temperature.accuracy<1", entity)
    assert not matches("temperature.precision", entity)
    assert not matches("temperature.precision!=1", entity)
    assert not matches("temperature.precision!~=x", entity)
    assert matches("!temperature.precision", entity)
    assert matches("temperature.observedAt>=2020-06-01T00:00:00Z", entity)
    assert not matches("temperature.observedAt>2020-06-01T10:00:00Z", entity)
    assert matches("temperature.accuracy.observedAt<2020-06-01T10:00:00Z", entity)
    assert matches('temperature.unitCode=="CEL"', entity)
    assert not matches("temperature.datasetId", entity)


def test_dots_go_into_a_compound_value_without_such_sub_attribute() -> None:
    entity = make_entity(
        address=prop({"city": "Seoul", "geo": {"lat": 37}}),
        shadowed=prop({"city": "Busan"}, **{expand("city"): prop("Seoul")}),
    )
    assert matches('address.city=="Seoul"', entity)
    assert matches("address.geo.lat==37", entity)
    assert matches("address.geo[lat]==37", entity)
    assert not matches("address.town", entity)
    assert matches('shadowed.city=="Seoul"', entity)
    assert not matches('shadowed.city=="Busan"', entity)


def test_logic() -> None:
    entity = make_entity(a=prop(1), b=prop("x"))
    assert matches('a==1;b=="x"', entity)
    assert not matches('a==1;b=="y"', entity)
    assert matches('a==2|b=="x"', entity)
    assert matches('(a==2|b=="x");!c', entity)
    assert not matches('a==2|b=="y";a==1', entity)


def test_evaluate_refuses_other_trees() -> None:
    with pytest.raises(TypeError):
        evaluate(parse_types("A"), make_entity())
    with pytest.raises(TypeError):
        evaluate_types(parse_q("a"), [])
    with pytest.raises(TypeError):
        evaluate_scope(parse_q("a"), [])


# --- scopes and types


@pytest.mark.parametrize(
    ("pattern", "scope", "expected"),
    [
        ("/Madrid", "/Madrid", True),
        ("/Madrid", "/Madrid/Gardens", False),
        ("/Madrid", "/MadridNorth", False),
        ("/Madrid/#", "/Madrid", True),
        ("/Madrid/#", "/Madrid/Gardens/East", True),
        ("/Madrid/#", "/MadridNorth", False),
        ("/Madrid/+", "/Madrid/Gardens", True),
        ("/Madrid/+", "/Madrid", False),
        ("/Madrid/+", "/Madrid/Gardens/East", False),
        ("/Madrid/+/East", "/Madrid/Gardens/East", True),
        ("/+/#", "/Seoul/Dobong", True),
        ("/#", "/anything/at/all", True),
        ("/#", "/", True),
    ],
)
def test_scope_patterns(pattern: str, scope: str, expected: bool) -> None:
    parsed = parse_scope_q(pattern)
    assert isinstance(parsed, ScopePattern)
    assert scope_matches(parsed, scope) is expected


def test_scope_logic() -> None:
    scopes = ["/Madrid/Gardens", "/Seoul"]
    assert evaluate_scope(parse_scope_q("/Seoul;/Madrid/#"), scopes)
    assert not evaluate_scope(parse_scope_q("/Seoul;/Busan"), scopes)
    assert evaluate_scope(parse_scope_q("/Busan,/Seoul"), scopes)
    assert not evaluate_scope(parse_scope_q("/#"), [])


def test_types() -> None:
    types = ["A", "B"]
    assert evaluate_types(parse_types("A"), types)
    assert evaluate_types(parse_types("C,B"), types)
    assert evaluate_types(parse_types("A;B"), types)
    assert not evaluate_types(parse_types("A;C"), types)
    assert evaluate_types(parse_types("(A;C)|B"), types)
