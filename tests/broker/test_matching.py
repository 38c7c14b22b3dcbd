"""Which changes notify which subscriptions, and what the notifications say."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartcity.broker.contexts import build_context
from smartcity.broker.matching import (
    CompiledSubscription,
    SubscriptionIndex,
    compile_subscription,
)
from smartcity.broker.notifications import notification_data
from smartcity.core.entity import StoredEntity
from smartcity.storage.base import ChangeKind, ChangeRecord
from smartcity.storage.subscriptions import SubscriptionRecord
from tests.storage.entity_factories import VOCAB, geo, iri, make_entity, point, prop, rel

TERMS = "occupancy label colour refCar ParkingSpot Vehicle Streetlight OffStreetParking"
CTX, _ = build_context({term: VOCAB + term for term in TERMS.split()})
NOW = 1_800_000_000.0


def compiled(name: str = "s", tenant: str = "", **doc: Any) -> CompiledSubscription:
    body = {
        "id": f"urn:ngsi-ld:Subscription:{name}",
        "type": "Subscription",
        "notification": {"endpoint": {"uri": "http://x/"}, **doc.pop("notification", {})},
        **doc,
    }
    record = SubscriptionRecord(tenant, body["id"], body, None, "2026-01-01T00:00:00Z", "")
    return compile_subscription(record, CTX)


def change(
    kind: ChangeKind,
    entity: StoredEntity,
    changed: list[str] | None = None,
    previous: dict[str, Any] | None = None,
    tenant: str = "",
) -> ChangeRecord:
    names = list(entity.attrs) if changed is None else [iri(n) for n in changed]
    return ChangeRecord(1, tenant, kind, "2026-11-27T10:00:00Z", entity, names, previous or {})


SPOT = make_entity(
    "urn:ngsi-ld:ParkingSpot:1", "ParkingSpot", occupancy=prop("free"), label=prop("A")
)


def updated(**previous: Any) -> ChangeRecord:
    return change(
        ChangeKind.UPDATE,
        SPOT,
        list(previous),
        {iri(name): [value] for name, value in previous.items() if value is not None},
    )


def test_default_triggers_are_attribute_created_and_updated() -> None:
    subscription = compiled(entities=[{"type": "ParkingSpot"}])
    assert subscription.triggered_by(change(ChangeKind.CREATE, SPOT))
    assert subscription.triggered_by(updated(occupancy=prop("occupied")))
    assert not subscription.triggered_by(change(ChangeKind.DELETE, SPOT))


def test_watched_attributes_and_each_trigger() -> None:
    watching = compiled(entities=[{"type": "ParkingSpot"}], watchedAttributes=["occupancy"])
    assert watching.triggered_by(updated(occupancy=prop("occupied")))
    assert not watching.triggered_by(updated(label=prop("B")))
    created_only = compiled(
        watchedAttributes=["occupancy"], notificationTrigger=["attributeCreated"]
    )
    assert created_only.triggered_by(updated(occupancy=None))  # occupancy did not exist before
    assert not created_only.triggered_by(updated(occupancy=prop("occupied")))
    deleted = compiled(watchedAttributes=["colour"], notificationTrigger=["attributeDeleted"])
    assert deleted.triggered_by(updated(colour=prop("red")))  # SPOT has no colour any more
    entity_updated = compiled(
        entities=[{"type": "ParkingSpot"}], notificationTrigger=["entityUpdated"]
    )
    assert entity_updated.triggered_by(updated(label=prop("B")))
    assert not entity_updated.triggered_by(change(ChangeKind.CREATE, SPOT))
    entity_deleted = compiled(
        entities=[{"type": "ParkingSpot"}], notificationTrigger=["entityDeleted"]
    )
    assert entity_deleted.triggered_by(change(ChangeKind.DELETE, SPOT))


def test_selection_by_id_pattern_type_grammar_q_and_geo() -> None:
    assert compiled(entities=[{"type": "ParkingSpot", "id": SPOT.id}]).selects(SPOT)
    assert not compiled(entities=[{"type": "ParkingSpot", "id": "urn:x:2"}]).selects(SPOT)
    assert compiled(entities=[{"type": "ParkingSpot", "idPattern": ":Parking.*:1$"}]).selects(SPOT)
    assert compiled(entities=[{"type": "OffStreetParking|ParkingSpot"}]).selects(SPOT)
    assert not compiled(entities=[{"type": "ParkingSpot;Vehicle"}]).selects(SPOT)
    assert compiled(entities=[{"type": "ParkingSpot"}], q='occupancy=="free"').selects(SPOT)
    assert not compiled(entities=[{"type": "ParkingSpot"}], q='occupancy=="occupied"').selects(SPOT)
    located = make_entity("urn:x:3", "ParkingSpot", location=geo(point(127.05, 37.65)))
    near = {
        "georel": "near;maxDistance==1000",
        "geometry": "Point",
        "coordinates": [127.05, 37.651],
    }
    assert compiled(entities=[{"type": "ParkingSpot"}], geoQ=near).selects(located)
    far = {**near, "coordinates": [126.9, 37.5]}
    assert not compiled(entities=[{"type": "ParkingSpot"}], geoQ=far).selects(located)


def test_paused_expired_and_older_subscriptions_are_not_matched() -> None:
    index = SubscriptionIndex(
        [
            compiled("paused", entities=[{"type": "ParkingSpot"}], isActive=False),
            compiled(
                "expired", entities=[{"type": "ParkingSpot"}], expiresAt="2020-01-01T00:00:00Z"
            ),
            compiled("other-tenant", tenant="police", entities=[{"type": "ParkingSpot"}]),
            compiled("live", entities=[{"type": "ParkingSpot"}]),
        ]
    )
    matched = index.matches(change(ChangeKind.CREATE, SPOT), NOW)
    assert [s.record.id for s in matched] == ["urn:ngsi-ld:Subscription:live"]


def test_show_changes_and_deleted_attributes() -> None:
    entity = make_entity(
        "urn:x:4", "ParkingSpot", occupancy=prop("occupied"), refCar=rel("urn:car:2")
    )
    record = change(
        ChangeKind.UPDATE,
        entity,
        ["occupancy", "refCar", "colour"],
        {
            iri("occupancy"): [prop("free")],
            iri("refCar"): [rel("urn:car:1")],
            iri("colour"): [prop("red")],
        },
    )
    data = notification_data(
        compiled(
            watchedAttributes=["occupancy", "refCar", "colour"], notification={"showChanges": True}
        ),
        record,
    )
    assert data["occupancy"] == {"type": "Property", "value": "occupied", "previousValue": "free"}
    assert data["refCar"]["previousObject"] == "urn:car:1"
    assert data["colour"] == {
        "type": "Property",
        "value": "urn:ngsi-ld:null",
        "deletedAt": "2026-11-27T10:00:00Z",
    }
    concise = notification_data(
        compiled(
            watchedAttributes=["occupancy"], notification={"showChanges": True, "format": "concise"}
        ),
        record,
    )
    assert concise["occupancy"] == {"value": "occupied", "previousValue": "free"}


TYPES = st.sampled_from(["ParkingSpot", "Vehicle", "Streetlight", "OffStreetParking"])
SELECTORS = st.fixed_dictionaries(
    {
        "type": st.one_of(
            TYPES,
            st.builds(
                lambda a, b, op: f"{a}{op}{b}", TYPES, TYPES, st.sampled_from([",", "|", ";"])
            ),
        )
    },
    optional={"id": st.sampled_from(["urn:e:1", "urn:e:2"])},
)


@given(
    subscriptions=st.lists(st.lists(SELECTORS, min_size=1, max_size=3), max_size=6),
    entity_id=st.sampled_from(["urn:e:1", "urn:e:2", "urn:e:3"]),
    types=st.lists(TYPES, min_size=1, max_size=2, unique=True),
)
def test_the_index_finds_every_subscription_that_selects_an_entity(
    subscriptions: list[list[dict[str, str]]], entity_id: str, types: list[str]
) -> None:
    all_compiled = [
        compiled(f"s{n}", entities=selectors) for n, selectors in enumerate(subscriptions)
    ]
    entity = make_entity(entity_id, types)
    candidates = {id(s) for s in SubscriptionIndex(all_compiled).candidates("", entity)}
    for subscription in all_compiled:
        if subscription.selects(entity):
            assert id(subscription) in candidates
