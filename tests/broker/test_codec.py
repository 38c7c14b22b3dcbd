"""Parsing NGSI-LD entities into the stored form and rendering them back."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.broker.codec import (
    is_uri,
    parse_attributes,
    parse_entity,
    parse_entity_fragment,
    render_entity,
)
from smartcity.broker.contexts import CORE, ActiveContext, build_context
from smartcity.broker.render import pick_language, render_feature_collection, render_geojson
from smartcity.core.entity import LOCATION, StoredEntity
from smartcity.core.errors import BadRequestData

NOW = "2026-11-27T10:00:00.000000Z"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
EX = "https://example.org/"
POINT = {"type": "Point", "coordinates": [127.0477, 37.6531]}


def context() -> ActiveContext:
    ctx, _ = build_context(
        {
            "ex": EX,
            "ParkingSpot": "ex:ParkingSpot",
            "availability": "ex:availability",
            "occupancy": "ex:occupancy",
            "refParkingSite": "ex:refParkingSite",
            "accuracy": "ex:accuracy",
            "category": "ex:category",
            "Public": "ex:Public",
        }
    )
    return ctx


def parking_spot(**attributes: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:ParkingSpot:1", "type": "ParkingSpot", **attributes}


def parse(body: dict[str, Any]) -> StoredEntity:
    return parse_entity(body, context(), NOW)


def refused(body: Any, message: str) -> None:
    with pytest.raises(BadRequestData) as raised:
        parse_entity(body, context(), NOW)
    assert message in raised.value.detail, raised.value.detail


# -- parsing ---------------------------------------------------------------------------------------


def test_normalized_entity_is_expanded_and_stamped() -> None:
    entity = parse(
        parking_spot(
            occupancy={
                "type": "Property",
                "value": 0.5,
                "observedAt": "2026-11-27T09:00:00Z",
                "unitCode": "P1",
                "accuracy": {"type": "Property", "value": 0.1},
                "createdAt": "1999-01-01T00:00:00Z",
            },
            location={"type": "GeoProperty", "value": POINT},
            scope="/Dobong/Changdong",
            createdAt="1999-01-01T00:00:00Z",
        )
    )
    assert entity.id == "urn:ngsi-ld:ParkingSpot:1"
    assert entity.types == [EX + "ParkingSpot"]
    assert entity.scopes == ["/Dobong/Changdong"]
    assert entity.created_at == entity.modified_at == NOW
    assert entity.attrs[EX + "occupancy"] == [
        {
            "type": "Property",
            "value": 0.5,
            "observedAt": "2026-11-27T09:00:00Z",
            "unitCode": "P1",
            EX + "accuracy": {"type": "Property", "value": 0.1},
            "createdAt": NOW,
            "modifiedAt": NOW,
        }
    ]
    assert entity.attrs[LOCATION][0]["value"] == POINT


def test_several_types_and_scopes() -> None:
    entity = parse({**parking_spot(scope=["/a", "/b"]), "type": ["ParkingSpot", "ex:Other"]})
    assert entity.types == [EX + "ParkingSpot", EX + "Other"]
    assert entity.scopes == ["/a", "/b"]


def test_compound_values_keep_their_keys() -> None:
    address = {"streetAddress": "Nohae-ro 1", "type": "PostalAddress"}
    entity = parse(parking_spot(address={"type": "Property", "value": address}))
    assert entity.attrs[DEFAULT + "address"][0]["value"] == address


def test_concise_input_is_inferred() -> None:
    entity = parse(
        parking_spot(
            availability="free",
            occupancy={"value": 3, "accuracy": 0.5},
            refParkingSite={"object": "urn:ngsi-ld:ParkingSite:1"},
            name={"languageMap": {"en": "Spot", "ko": "주차면"}},
            category={"vocab": "Public"},
            location=POINT,
            entrance={"value": POINT},
            tags=["a", "b"],
            settings={"json": {"mode": "auto"}},
            readings={"valueList": [1, 2]},
            neighbours={"objectList": ["urn:ngsi-ld:ParkingSpot:2"]},
        )
    )
    kinds = {name: instances[0]["type"] for name, instances in entity.attrs.items()}
    assert kinds == {
        EX + "availability": "Property",
        EX + "occupancy": "Property",
        EX + "refParkingSite": "Relationship",
        DEFAULT + "name": "LanguageProperty",
        EX + "category": "VocabProperty",
        LOCATION: "GeoProperty",
        DEFAULT + "entrance": "GeoProperty",
        DEFAULT + "tags": "Property",
        DEFAULT + "settings": "JsonProperty",
        DEFAULT + "readings": "ListProperty",
        DEFAULT + "neighbours": "ListRelationship",
    }
    assert entity.attrs[EX + "occupancy"][0][EX + "accuracy"] == {"type": "Property", "value": 0.5}
    assert entity.attrs[EX + "category"][0]["vocab"] == EX + "Public"
    assert entity.attrs[DEFAULT + "tags"][0]["value"] == ["a", "b"]


def test_multi_instance_attributes() -> None:
    entity = parse(
        parking_spot(
            occupancy=[
                {"type": "Property", "value": 1},
                {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:camera"},
            ]
        )
    )
    instances = entity.attrs[EX + "occupancy"]
    assert [i["value"] for i in instances] == [1, 2]
    assert "datasetId" not in instances[0]
    assert all(i["createdAt"] == NOW for i in instances)


def test_the_same_attribute_under_two_names_is_refused() -> None:
    refused(parking_spot(occupancy=1, **{"ex:occupancy": 2}), "'ex:occupancy' is given twice")


def test_parse_attributes() -> None:
    attrs = parse_attributes({"occupancy": 4, "@context": "ignored"}, context(), NOW)
    assert attrs == {
        EX + "occupancy": [{"type": "Property", "value": 4, "createdAt": NOW, "modifiedAt": NOW}]
    }
    expanded = parse_attributes({EX + "occupancy": {"value": 5}}, context(), NOW)
    assert list(expanded) == [EX + "occupancy"]
    with pytest.raises(BadRequestData, match="'id' is not an attribute"):
        parse_attributes({"id": "urn:x:1", "occupancy": 4}, context(), NOW)


def test_parse_entity_fragment() -> None:
    fragment = parse_entity_fragment(
        {"occupancy": {"value": 1, "accuracy": None}, "availability": None}, context(), NOW
    )
    assert fragment.id is None
    assert fragment.types is None
    assert fragment.deleted == [EX + "availability"]
    assert fragment.attrs[EX + "occupancy"][0][EX + "accuracy"] is None
    full = parse_entity_fragment(parking_spot(scope="/a"), context(), NOW)
    assert full.id == "urn:ngsi-ld:ParkingSpot:1"
    assert full.types == [EX + "ParkingSpot"]
    assert full.scopes == ["/a"]
    with pytest.raises(BadRequestData, match="not an absolute URI"):
        parse_entity_fragment({"id": "spot-1"}, context(), NOW)


@pytest.mark.parametrize(
    "text", ["urn:ngsi-ld:X:1", "https://example.org/a?b=c", "uri:x", "ngsi-ld:HUES:001"]
)
def test_uris(text: str) -> None:
    assert is_uri(text)


@pytest.mark.parametrize("text", ["DTI-036", "", "urn:", "1urn:x", "urn:a b", "2020-03-17T08:45Z"])
def test_not_uris(text: str) -> None:
    assert not is_uri(text)


# -- validation errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "an entity must be a JSON object"),
        ({"type": "ParkingSpot"}, "the entity has no 'id'"),
        ({"id": "urn:ngsi-ld:ParkingSpot:1"}, "has no 'type'"),
        (parking_spot(id="DTI-036"), "the entity id 'DTI-036' is not an absolute URI"),
        (parking_spot(id=7), "the entity id must be a string URI"),
        (parking_spot(type=[]), "the entity 'type' is an empty list"),
        (parking_spot(type=3), "entity type must be a string or a list of strings"),
        (parking_spot(type="Parking Spot"), "the entity type name 'Parking Spot' is not valid"),
        (parking_spot(scope=""), "scope must be a string"),
        (parking_spot(**{"bad(name)": 1}), "the attribute name 'bad(name)' is not valid"),
        (parking_spot(**{"availability ": 1}), "the attribute name 'availability ' is not valid"),
        (parking_spot(**{"@weird": 1}), "the attribute name '@weird' is not valid"),
        (parking_spot(availability={"type": "string", "value": 1}), "has type 'string'"),
        (parking_spot(availability={"type": "Property"}), "Property 'availability' has no 'value'"),
        (parking_spot(availability={"type": "Property", "value": None}), "has value: null"),
        (parking_spot(availability=None), "attribute 'availability' is null"),
        (
            parking_spot(availability={"type": "Property", "object": "urn:x:1"}),
            "Property 'availability' cannot have 'object'",
        ),
        (
            parking_spot(availability={"value": 1, "object": "urn:x:1"}),
            "has both 'object' and 'value'",
        ),
        (
            parking_spot(availability={"streetAddress": "x"}),
            "attribute 'availability' has no 'type'",
        ),
        (
            parking_spot(refParkingSite={"type": "Relationship", "object": "site-1"}),
            "object of relationship 'refParkingSite' must be an entity URI, not 'site-1'",
        ),
        (
            parking_spot(refParkingSite={"type": "Relationship", "object": []}),
            "object of 'refParkingSite' is an empty array",
        ),
        (
            parking_spot(refParkingSite={"type": "Relationship", "object": ["urn:a:1", 3]}),
            "must be an entity URI, not 3",
        ),
        (
            parking_spot(
                location={
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [200, 1]},
                }
            ),
            "GeoProperty 'location' has an invalid GeoJSON geometry: longitude 200",
        ),
        (
            parking_spot(
                location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 95]}}
            ),
            "latitude 95 is outside [-90, 90]",
        ),
        (
            parking_spot(
                location={
                    "type": "GeoProperty",
                    "value": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
                }
            ),
            "is not a closed ring",
        ),
        (
            parking_spot(location={"type": "GeoProperty", "value": {"type": "Circle"}}),
            "GeoProperty 'location' has an invalid GeoJSON geometry",
        ),
        (
            parking_spot(
                location={
                    "type": "GeoProperty",
                    "value": {"type": "GeometryCollection", "geometries": []},
                }
            ),
            "a GeometryCollection needs a non-empty 'geometries' array",
        ),
        (
            parking_spot(location={"type": "Property", "value": "Changdong"}),
            "'location' must be a GeoProperty",
        ),
        (parking_spot(location="Changdong"), "'location' must be a GeoProperty"),
        (
            parking_spot(availability={"value": 1, "observedAt": "2020-03-17TT08:45:00Z"}),
            "observedAt of 'availability' must be an ISO 8601 date-time",
        ),
        (
            parking_spot(availability={"value": 1, "observedAt": "2020-13-17T08:45:00Z"}),
            "observedAt of 'availability' must be an ISO 8601 date-time",
        ),
        (
            parking_spot(availability={"value": 1, "unitCode": 3}),
            "unitCode of 'availability' must be",
        ),
        (
            parking_spot(availability={"value": 1, "datasetId": "camera"}),
            "datasetId of 'availability' must be a URI, not 'camera'",
        ),
        (
            parking_spot(
                availability=[
                    {"value": 1, "datasetId": "urn:d:1"},
                    {"value": 2, "datasetId": "urn:d:1"},
                ]
            ),
            "attribute 'availability' has two instances with datasetId 'urn:d:1'",
        ),
        (
            parking_spot(availability=[{"value": 1}, {"value": 2}]),
            "attribute 'availability' has two instances with no datasetId",
        ),
        (
            parking_spot(availability={"value": 1, "accuracy": [{"value": 1}, {"value": 2}]}),
            "sub-attribute 'accuracy' of 'availability' has several instances",
        ),
        (
            parking_spot(availability={"value": 1, "accuracy": {"type": "Property"}}),
            "Property 'accuracy' has no 'value'",
        ),
        (parking_spot(availability={"value": 1, "bad name": 2}), "sub-attribute name 'bad name'"),
        (
            parking_spot(name={"type": "LanguageProperty", "languageMap": "Spot"}),
            "languageMap of 'name' must be an object",
        ),
        (
            parking_spot(name={"languageMap": {"english!": "Spot"}}),
            "languageMap of 'name' has 'english!', not a language tag",
        ),
        (parking_spot(name={"languageMap": {"en": 3}}), "must map 'en' to a string"),
        (parking_spot(category={"vocab": 3}), "vocab of 'category' must be a term"),
        (parking_spot(readings={"type": "ListProperty", "valueList": 3}), "must be an array"),
        (
            parking_spot(neighbours={"objectList": ["spot-2"]}),
            "objectList of relationship 'neighbours' must be an entity URI",
        ),
        (
            parking_spot(availability={"value": 1, "objectType": "ParkingSite"}),
            "objectType is for relationships",
        ),
        (parking_spot(id=123), "must be a string URI"),
    ],
)
def test_validation_errors(body: Any, message: str) -> None:
    refused(body, message)


def test_deep_nesting_is_refused() -> None:
    attribute: dict[str, Any] = {"value": 1}
    for _ in range(20):
        attribute = {"value": 1, "inner": attribute}
    refused(parking_spot(availability=attribute), "nests more than 16 sub-attributes")


# -- rendering -------------------------------------------------------------------------------------


def sample() -> StoredEntity:
    return parse(
        parking_spot(
            availability={
                "type": "Property",
                "value": "free",
                "observedAt": "2026-11-27T09:00:00Z",
            },
            occupancy=[
                {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"},
                {"type": "Property", "value": 2},
            ],
            refParkingSite={"type": "Relationship", "object": "urn:ngsi-ld:ParkingSite:1"},
            name={"type": "LanguageProperty", "languageMap": {"en": "Spot", "ko": "주차면"}},
            category={"type": "VocabProperty", "vocab": ["Public", "ex:Covered"]},
            location={"type": "GeoProperty", "value": POINT},
            address={"type": "Property", "value": {"streetAddress": "Nohae-ro 1"}},
            shape={"type": "Property", "value": POINT},
        )
    )


def test_normalized_output_compacts_names() -> None:
    out = render_entity(sample(), context(), form="normalized")
    assert out["type"] == "ParkingSpot"
    assert out["availability"] == {
        "type": "Property",
        "value": "free",
        "observedAt": "2026-11-27T09:00:00Z",
    }
    assert out["occupancy"] == [
        {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"},
        {"type": "Property", "value": 2},
    ]
    assert out["category"]["vocab"] == ["Public", "ex:Covered"]
    assert "@context" not in out
    assert "createdAt" not in out


def test_sys_attrs() -> None:
    out = render_entity(sample(), context(), form="normalized", sys_attrs=True)
    assert out["createdAt"] == out["modifiedAt"] == NOW
    assert out["availability"]["createdAt"] == NOW
    concise = render_entity(sample(), context(), form="concise", sys_attrs=True)
    assert concise["availability"]["modifiedAt"] == NOW


def test_key_values_output() -> None:
    out = render_entity(sample(), context(), form="keyValues")
    assert out == {
        "id": "urn:ngsi-ld:ParkingSpot:1",
        "type": "ParkingSpot",
        "availability": "free",
        "occupancy": 2,
        "refParkingSite": "urn:ngsi-ld:ParkingSite:1",
        "name": {"en": "Spot", "ko": "주차면"},
        "category": ["Public", "ex:Covered"],
        "location": POINT,
        "address": {"streetAddress": "Nohae-ro 1"},
        "shape": POINT,
    }
    assert render_entity(sample(), context(), form="keyValues", lang="ko")["name"] == "주차면"


def test_concise_output() -> None:
    out = render_entity(sample(), context(), form="concise")
    assert out["availability"] == {"value": "free", "observedAt": "2026-11-27T09:00:00Z"}
    assert out["occupancy"] == [{"value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"}, {"value": 2}]
    assert out["refParkingSite"] == {"object": "urn:ngsi-ld:ParkingSite:1"}
    assert out["name"] == {"languageMap": {"en": "Spot", "ko": "주차면"}}
    assert out["category"] == {"vocab": ["Public", "ex:Covered"]}
    assert out["location"] == {"value": POINT}
    assert out["address"] == {"value": {"streetAddress": "Nohae-ro 1"}}
    assert out["shape"] == {"type": "Property", "value": POINT}
    simple = parse(parking_spot(availability={"type": "Property", "value": "free"}))
    assert render_entity(simple, context(), form="concise")["availability"] == "free"


def test_concise_output_parses_back_to_the_same_entity() -> None:
    entity = sample()
    concise = render_entity(entity, context(), form="concise")
    assert parse(concise) == entity


def test_projection_keeps_only_the_asked_attributes() -> None:
    out = render_entity(
        sample(), context(), form="normalized", attrs={EX + "availability", LOCATION}
    )
    assert set(out) == {"id", "type", "availability", "location"}


def test_language_choice_in_normalized_output() -> None:
    out = render_entity(sample(), context(), form="normalized", lang="ko")
    assert out["name"] == {"type": "Property", "value": "주차면", "lang": "ko"}
    fallback = render_entity(sample(), context(), form="normalized", lang="fr")
    assert fallback["name"]["lang"] == "en"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("ko", "ko"),
        ("KO", "ko"),
        ("fr,ko;q=0.5", "ko"),
        ("en-GB", "en"),
        ("*", "en"),
        ("fr", "en"),
        ("ko;q=0.2,en;q=0.9", "en"),
    ],
)
def test_pick_language(lang: str, expected: str) -> None:
    picked = pick_language({"en": "Spot", "ko": "주차면"}, lang)
    assert picked is not None
    assert picked[0] == expected


def test_pick_language_prefers_none_as_fallback() -> None:
    assert pick_language({"en": "a", "@none": "b"}, "fr") == ("@none", "b")


def test_geojson_output() -> None:
    feature = render_geojson(sample(), context(), form="keyValues", geoproperty=LOCATION)
    assert feature["type"] == "Feature"
    assert feature["id"] == "urn:ngsi-ld:ParkingSpot:1"
    assert feature["geometry"] == POINT
    assert feature["properties"]["type"] == "ParkingSpot"
    assert "id" not in feature["properties"]
    assert feature["properties"]["availability"] == "free"
    other = render_geojson(sample(), context(), geoproperty=EX + "nowhere")
    assert other["geometry"] is None
    collection = render_feature_collection([feature, other])
    assert collection == {"type": "FeatureCollection", "features": [feature, other]}


def test_rendering_under_another_context() -> None:
    out = render_entity(sample(), CORE, form="normalized")
    assert out["type"] == "ex:ParkingSpot" or out["type"] == EX + "ParkingSpot"
    assert EX + "availability" in out
    assert out["location"]["type"] == "GeoProperty"


def test_rendering_does_not_change_the_entity() -> None:
    entity = sample()
    before = copy.deepcopy(entity)
    for form in ("normalized", "concise", "keyValues"):
        render_entity(entity, context(), form=form, lang="ko")
    assert entity == before


# -- round trips -----------------------------------------------------------------------------------

# What a database can store: no NUL or lone surrogate in text, integers within 64 bits.
storable_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=5
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | storable_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(storable_text, inner, max_size=3),
    max_leaves=8,
).filter(lambda value: value is not None)


@given(values=st.dictionaries(st.sampled_from(["a", "b", "c", "status"]), json_values, max_size=4))
def test_concise_round_trip_of_any_values(values: dict[str, Any]) -> None:
    entity = parse_entity(
        {"id": "urn:x:1", "type": "T", **{k: {"value": v} for k, v in values.items()}}, CORE, NOW
    )
    for form in ("normalized", "concise"):
        rendered = render_entity(entity, CORE, form=form)
        assert parse_entity(rendered, CORE, NOW) == entity


def test_what_no_database_stores_is_refused() -> None:
    ctx = CORE
    for body, message in (
        ({"id": "urn:x:1", "type": "T", "a": {"type": "Property", "value": "a\x00b"}}, "NUL"),
        ({"id": "urn:x:1", "type": "T", "a": {"type": "Property", "value": 2**70}}, "64-bit"),
        ({"id": "urn:x:" + "9" * 600, "type": "T"}, "limited to"),
        ({"id": "urn:x:1", "type": "T", "a" * 300: {"type": "Property", "value": 1}}, "limited"),
    ):
        with pytest.raises(BadRequestData, match=message):
            parse_entity(body, ctx, NOW)
