"""The EntityStore contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from smartcity.core.entity import StoredEntity
from smartcity.core.errors import AlreadyExists
from smartcity.core.geo import GeoPredicate
from smartcity.storage.base import Changes, EntityQuery, EntityStore
from tests.storage.entity_factories import (
    geo,
    georel,
    iri,
    make_entity,
    near,
    point,
    polygon,
    prop,
    q_expr,
    rel,
    scope_expr,
    type_expr,
)

SPOT = "urn:ngsi-ld:ParkingSpot:"
A, B, C, E = SPOT + "001", SPOT + "002", SPOT + "003", SPOT + "004"
D = "urn:ngsi-ld:OffStreetParking:changdong"
CHANGDONG = (127.0473, 37.6531)
NOWON = (127.0615, 37.6551)  # about 1.25 km east of Changdong station
DOBONG = polygon((127.00, 37.63), (127.055, 37.63), (127.055, 37.70), (127.00, 37.70))


def put(store: EntityStore, *entities: StoredEntity, tenant: str = "") -> None:
    """Upsert entities whatever their current state."""
    store.apply(tenant, [entity.id for entity in entities], lambda _: Changes(list(entities)))


def delete(store: EntityStore, *ids: str, tenant: str = "") -> None:
    """Delete entities by id."""
    store.apply(tenant, ids, lambda _: Changes(deletes=list(ids)))


def found(store: EntityStore, **query: Any) -> list[str]:
    """Return the ids a query finds, in the store's order."""
    return [entity.id for entity in store.query(EntityQuery(limit=1000, **query)).entities]


def parking() -> list[StoredEntity]:
    """Return four parking spots (one also a Device) and the car park they belong to."""
    site = rel(D)
    return [
        make_entity(
            A,
            "ParkingSpot",
            scopes=["/Seoul/Dobong/Changdong"],
            status=prop("free", observedAt="2026-11-27T09:30:00Z"),
            width=prop(2.5, **{iri("accuracy"): prop(0.1)}),
            category=["onStreet", "forDisabled"],
            name="Changdong Station 1",
            chargingPoint=True,
            config={"mode": "camera", "height": 3},
            lastSeen={"@type": "DateTime", "@value": "2026-11-27T09:30:00Z"},
            refParkingSite=site,
            location=geo(point(*CHANGDONG)),
        ),
        make_entity(
            B,
            "ParkingSpot",
            scopes=["/Seoul/Dobong/Changdong/East"],
            status=prop("occupied", observedAt="2026-11-27T08:00:00Z"),
            width=prop(2.2, **{iri("accuracy"): prop(0.5)}),
            category=["onStreet"],
            name="Changdong Station 2",
            chargingPoint=False,
            config={"mode": "magnetometer"},
            lastSeen={"@type": "DateTime", "@value": "2026-11-27T10:30:00+09:00"},
            refParkingSite=site,
            location=geo(point(CHANGDONG[0] + 0.00227, CHANGDONG[1])),  # 200 m east
        ),
        make_entity(
            C,
            "ParkingSpot",
            scopes=["/Seoul/Nowon"],
            status="closed",
            width=3.0,
            category=["offStreet"],
            name="Nowon Market",
            location=geo(point(*NOWON)),
        ),
        make_entity(
            D,
            "OffStreetParking",
            scopes=["/Seoul/Dobong"],
            totalSpotNumber=120,
            availableSpotNumber=35,
            name="Changdong Public Parking",
            location=geo(
                polygon(
                    (CHANGDONG[0] - 0.0005, CHANGDONG[1] - 0.0005),
                    (CHANGDONG[0] + 0.0005, CHANGDONG[1] - 0.0005),
                    (CHANGDONG[0] + 0.0005, CHANGDONG[1] + 0.0005),
                    (CHANGDONG[0] - 0.0005, CHANGDONG[1] + 0.0005),
                )
            ),
        ),
        make_entity(E, ["ParkingSpot", "Device"], status="free", width=2.4),
    ]


@pytest.fixture
def city(store: EntityStore) -> EntityStore:
    """Return the store holding the `parking` entities in the default tenant."""
    put(store, *parking())
    return store


# -- writes -----------------------------------------------------------------------------------


def test_create_replace_delete(store: EntityStore) -> None:
    spot = make_entity(A, "ParkingSpot", status="free")
    put(store, spot)
    assert store.get("", A) == spot

    put(store, make_entity(A, "ParkingSpot", status="occupied", width=2.5))
    stored = store.get("", A)
    assert stored is not None
    assert stored.attrs == {iri("status"): [prop("occupied")], iri("width"): [prop(2.5)]}

    delete(store, A, "urn:ngsi-ld:ParkingSpot:never-was")
    assert store.get("", A) is None
    assert found(store) == []
    assert store.type_summaries("") == []


def test_apply_gives_the_plan_the_current_entities(store: EntityStore) -> None:
    put(store, make_entity(A, "ParkingSpot", status="free"))
    seen: dict[str, StoredEntity] = {}

    def plan(current: dict[str, StoredEntity]) -> Changes:
        seen.update(current)
        return Changes()

    assert not store.apply("", [A, B], plan)
    assert set(seen) == {A}
    assert seen[A].attrs[iri("status")] == [prop("free")]


def test_a_plan_that_raises_writes_nothing(store: EntityStore) -> None:
    put(store, make_entity(A, "ParkingSpot", status="free"))

    def create_all(current: dict[str, StoredEntity]) -> Changes:
        current[A].attrs[iri("status")] = [prop("occupied")]  # changes the loaded copy only
        taken = sorted(current)
        if taken:
            raise AlreadyExists("entities already exist: " + ", ".join(taken))
        return Changes([make_entity(B, "ParkingSpot", status="occupied")])

    with pytest.raises(AlreadyExists):
        store.apply("", [B, A], create_all)
    assert_only_a_is_free(store)


def test_a_write_that_fails_halfway_writes_nothing(store: EntityStore) -> None:
    put(store, make_entity(A, "ParkingSpot", status="free"))
    new = make_entity(B, "ParkingSpot", status="occupied", location=geo(point(*CHANGDONG)))
    # Its entity row is written before its index rows are derived, which fails.
    broken = make_entity(C, "ParkingSpot")
    broken.attrs[iri("status")] = cast(Any, ["not an instance"])
    with pytest.raises(AttributeError):
        store.apply("", [B, C], lambda _: Changes([new, broken]))
    assert_only_a_is_free(store)


def assert_only_a_is_free(store: EntityStore) -> None:
    """Check the state both atomicity tests leave: A free, nothing else, in rows and indexes."""
    assert found(store) == [A]
    assert found(store, q=q_expr('status=="occupied"')) == []
    assert found(store, q=q_expr('status=="free"')) == [A]
    assert found(store, attrs=[iri("location")]) == []
    assert found(store, geo=near(*CHANGDONG, 100), geoproperty=iri("location")) == []
    assert [(s.type, s.count) for s in store.type_summaries("")] == [(iri("ParkingSpot"), 1)]


def test_concurrent_creates_of_one_id_let_one_win(store: EntityStore) -> None:
    threads = 6
    start = threading.Barrier(threads)
    outcomes: list[str] = []

    def create(worker: int) -> None:
        def plan(current: dict[str, StoredEntity]) -> Changes:
            if A in current:
                raise AlreadyExists(f"entity {A} already exists")
            time.sleep(0.05)  # let the others load while this one has decided
            return Changes([make_entity(A, "ParkingSpot", creator=worker)])

        start.wait()
        try:
            store.apply("", [A], plan)
        except AlreadyExists:
            outcomes.append("exists")
        else:
            outcomes.append(f"created by {worker}")

    run_threads(create, threads)
    winners = [outcome for outcome in outcomes if outcome != "exists"]
    assert len(outcomes) == threads
    assert len(winners) == 1
    stored = store.get("", A)
    assert stored is not None
    assert winners == [f"created by {stored.attrs[iri('creator')][0]['value']}"]


def test_concurrent_increments_lose_no_update(store: EntityStore) -> None:
    ids = [f"{SPOT}counter-{n:02d}" for n in range(20)]
    put(store, *(make_entity(entity_id, "ParkingSpot", occupancyCount=0) for entity_id in ids))
    counter = iri("occupancyCount")
    increments: list[Counter[str]] = [Counter() for _ in range(8)]

    def increment(worker: int) -> None:
        rng = random.Random(worker)
        for _ in range(50):
            chosen = rng.sample(ids, rng.randint(1, 3))  # in random order: locks must not deadlock

            def plan(current: dict[str, StoredEntity], chosen: list[str] = chosen) -> Changes:
                for entity_id in chosen:
                    current[entity_id].attrs[counter][0]["value"] += 1
                return Changes([current[entity_id] for entity_id in chosen])

            store.apply("", chosen, plan)
            increments[worker].update(chosen)

    run_threads(increment, len(increments))
    expected = sum(increments, Counter[str]())
    for entity_id in ids:
        stored = store.get("", entity_id)
        assert stored is not None
        assert stored.attrs[counter][0]["value"] == expected[entity_id], entity_id


def run_threads(work: Callable[[int], None], count: int) -> None:
    """Run `work(n)` for n in range(count) in threads; re-raise the first error."""
    errors: list[BaseException] = []

    def guarded(worker: int) -> None:
        try:
            work(worker)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    if errors:
        raise errors[0]


def test_batches_of_250(store: EntityStore) -> None:
    ids = [f"{SPOT}batch-{n:03d}" for n in range(250)]
    put(
        store,
        *(
            make_entity(entity_id, "ParkingSpot", status="free", width=2.0 + n / 100)
            for n, entity_id in enumerate(ids)
        ),
    )
    assert store.query(EntityQuery(limit=0, count=True)).total == 250
    assert store.query(EntityQuery(q=q_expr("width>=4"), limit=0, count=True)).total == 50
    assert found(store, ids=ids[100:110]) == ids[100:110]

    delete(store, *ids)
    assert store.query(EntityQuery(limit=0, count=True)).total == 0
    assert store.attribute_summaries("") == []


def test_an_upsert_replaces_the_index_rows(store: EntityStore) -> None:
    put(
        store,
        make_entity(
            A,
            "ParkingSpot",
            scopes=["/Seoul/Dobong"],
            status="free",
            category=["onStreet"],
            location=geo(point(*CHANGDONG)),
        ),
    )
    put(
        store,
        make_entity(
            A,
            "OffStreetParking",
            scopes=["/Seoul/Nowon"],
            status="occupied",
            location=geo(point(*NOWON)),
        ),
    )
    assert found(store, q=q_expr('status=="free"')) == []
    assert found(store, q=q_expr('status=="occupied"')) == [A]
    assert found(store, q=q_expr("category")) == []
    assert found(store, attrs=[iri("category")]) == []
    assert found(store, types=type_expr("ParkingSpot")) == []
    assert found(store, types=type_expr("OffStreetParking")) == [A]
    assert found(store, scope_q=scope_expr("/Seoul/Dobong")) == []
    assert found(store, scope_q=scope_expr("/Seoul/Nowon")) == [A]
    assert found(store, geo=near(*CHANGDONG, 100), geoproperty=iri("location")) == []
    assert found(store, geo=near(*NOWON, 100), geoproperty=iri("location")) == [A]
    assert [s.type for s in store.type_summaries("")] == [iri("OffStreetParking")]


def test_long_text_values_are_stored_and_found(store: EntityStore) -> None:
    description = "".join(random.Random(7).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=6000))
    put(store, make_entity(A, "ParkingSpot", description=description))
    put(store, make_entity(B, "ParkingSpot", description=description[:-1]))
    assert found(store, q=q_expr(f'description=="{description}"')) == [A]
    assert found(store, q=q_expr(f'description=="{description[:-1]}"')) == [B]
    assert found(store, q=q_expr(f'description>"{description[:-1]}"')) == [A]
    assert found(store, q=q_expr(f'description<"{description}"')) == [B]
    assert found(store, q=q_expr(f'description>="{description[:700]}"')) == [A, B]
    assert found(store, q=q_expr(f'description<"{description[:100]}"')) == []


def test_tenants_are_isolated(store: EntityStore) -> None:
    put(store, make_entity(A, "ParkingSpot", status="free"), tenant="dobong")
    put(store, make_entity(A, "OffStreetParking", status="occupied"), tenant="nowon")

    for tenant, status, kind in (("dobong", "free", "ParkingSpot"), ("nowon", "occupied", "")):
        stored = store.get(tenant, A)
        assert stored is not None
        assert stored.attrs[iri("status")] == [prop(status)]
        assert found(store, tenant=tenant, q=q_expr(f'status=="{status}"')) == [A]
        assert found(store, tenant=tenant, types=type_expr(kind or "OffStreetParking")) == [A]
    assert found(store, tenant="dobong", q=q_expr('status=="occupied"')) == []
    assert found(store, tenant="nowon", types=type_expr("ParkingSpot")) == []
    assert found(store, ids=[A]) == []
    assert store.get("", A) is None
    assert [s.type for s in store.type_summaries("nowon")] == [iri("OffStreetParking")]
    assert store.entities_of_type("dobong", iri("OffStreetParking")) == []

    delete(store, A, tenant="dobong")
    assert store.get("dobong", A) is None
    assert store.get("nowon", A) is not None


# -- queries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("width==2.5", [A]),
        ("width>2.4", [A, C]),
        ("width<=2.4", [B, E]),
        ("width==2.2..2.5", [A, B, E]),
        ('status=="free"', [A, E]),
        ('status=="free","closed"', [A, C, E]),
        ('status!="free"', [B, C]),
        ('status!="free";width>2.3', [C]),
        ('category=="onStreet"', [A, B]),
        ('name=="Changdong Station 1"', [A]),
        ('name>="Changdong Station 2"', [B, C]),
        ("name~=Station", [A, B]),
        ("name~=^N", [C]),
        ("name!~=Changdong", [C]),
        ("chargingPoint==true", [A]),
        ("refParkingSite==urn:ngsi-ld:OffStreetParking:changdong", [A, B]),
        ("availableSpotNumber", [D]),
        ("!status", [D]),
        ('config[mode]=="camera"', [A]),
        ("config[height]>2", [A]),
        ("width.accuracy<0.2", [A]),
        ("status.observedAt>=2026-11-27T09:00:00Z", [A]),
        ("lastSeen>2026-11-27T09:00:00Z", [A]),
        ("lastSeen<2026-11-27T09:00:00Z", [B]),
        ('(status=="free"|status=="closed");width>2.45', [A, C]),
        ("totalSpotNumber>100;availableSpotNumber<50", [D]),
    ],
)
def test_query_by_q(city: EntityStore, text: str, expected: list[str]) -> None:
    page = city.query(EntityQuery(q=q_expr(text), count=True, limit=100))
    assert [entity.id for entity in page.entities] == sorted(expected)
    assert page.total == len(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ParkingSpot", [A, B, C, E]),
        ("OffStreetParking", [D]),
        ("ParkingSpot,OffStreetParking", [A, B, C, D, E]),
        ("ParkingSpot;Device", [E]),
        ("Device|OffStreetParking", [D, E]),
        ("Streetlight", []),
    ],
)
def test_query_by_type(city: EntityStore, text: str, expected: list[str]) -> None:
    assert found(city, types=type_expr(text)) == sorted(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Seoul/Dobong/#", [A, B, D]),
        ("/Seoul/Dobong", [D]),
        ("/Seoul/+/Changdong", [A]),
        ("/Seoul/Nowon|/Seoul/Dobong", [C, D]),
        ("/Busan/#", []),
    ],
)
def test_query_by_scope(city: EntityStore, text: str, expected: list[str]) -> None:
    assert found(city, scope_q=scope_expr(text)) == sorted(expected)


def test_query_by_ids_pattern_and_attrs(city: EntityStore) -> None:
    assert found(city, ids=[C, A, "urn:ngsi-ld:ParkingSpot:missing"]) == [A, C]
    assert found(city, ids=[]) == []
    assert found(city, id_pattern=r"^urn:ngsi-ld:ParkingSpot:00[12]$") == [A, B]
    assert found(city, id_pattern="OffStreet", types=type_expr("OffStreetParking")) == [D]
    # Python's syntax, which other regex engines read differently or reject.
    assert found(city, id_pattern=r"\bOffStreetParking\b") == [D]
    assert found(city, id_pattern=r"ParkingSpot:00(?P<digit>[12])$") == [A, B]
    assert found(city, attrs=[iri("availableSpotNumber")]) == [D]
    assert found(city, attrs=[iri("config"), iri("totalSpotNumber")]) == sorted([A, B, D])
    assert found(city, ids=[A, B], q=q_expr('status=="occupied"')) == [B]


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        (near(*CHANGDONG, 100), [A, D]),
        (near(*CHANGDONG, 500), [A, B, D]),
        (near(*CHANGDONG, 2000), [A, B, C, D]),
        (georel("within", DOBONG), [A, B, D]),
        (georel("disjoint", DOBONG), [C]),
        (
            georel("intersects", polygon((127.049, 37.652), (127.0505, 37.652), (127.05, 37.6545))),
            [B],
        ),
    ],
    ids=["near-100m", "near-500m", "near-2km", "within", "disjoint", "intersects"],
)
def test_query_by_geo(city: EntityStore, predicate: GeoPredicate, expected: list[str]) -> None:
    page = city.query(EntityQuery(geo=predicate, geoproperty=iri("location"), count=True))
    assert [entity.id for entity in page.entities] == sorted(expected)
    assert page.total == len(expected)


@pytest.mark.parametrize(
    "text",
    ['status!="closed"', 'status=="free","occupied"'],
    ids=["python-recheck", "exact-sql"],
)
def test_pages_are_stable_by_id_with_correct_totals(store: EntityStore, text: str) -> None:
    statuses = ("closed", "free", "occupied")
    spots = [
        make_entity(f"{SPOT}p{n:02d}", "ParkingSpot", status=statuses[n % 3]) for n in range(30)
    ]
    put(store, *reversed(spots))
    expected = [spot.id for spot in spots if spot.attrs[iri("status")] != [prop("closed")]]

    pages: list[Sequence[str]] = []
    for offset in range(0, 28, 7):
        page = store.query(EntityQuery(q=q_expr(text), limit=7, offset=offset, count=True))
        assert page.total == 20
        pages.append([entity.id for entity in page.entities])
    assert [len(page) for page in pages] == [7, 7, 6, 0]
    assert [entity_id for page in pages for entity_id in page] == expected
    only_count = store.query(EntityQuery(q=q_expr(text), limit=0, count=True))
    assert (only_count.entities, only_count.total) == ([], 20)
    assert store.query(EntityQuery(q=q_expr(text), limit=5)).total is None


def test_multi_instance_attributes(store: EntityStore) -> None:
    roof = "urn:ngsi-ld:Dataset:roof"
    temperature = [prop(11.0), prop(14.5, datasetId=roof)]
    put(store, make_entity(A, "ParkingSpot", temperature=temperature))
    put(store, make_entity(B, "ParkingSpot", temperature=12.0))

    stored = store.get("", A)
    assert stored is not None
    assert stored.attrs[iri("temperature")] == temperature
    assert found(store, q=q_expr("temperature==14.5")) == [A]
    assert found(store, q=q_expr("temperature==11")) == [A]
    assert found(store, q=q_expr("temperature>12")) == [A]
    assert found(store, q=q_expr("temperature<12")) == [A]
    assert found(store, q=q_expr("temperature.datasetId==urn:ngsi-ld:Dataset:roof")) == [A]


def test_summaries(city: EntityStore) -> None:
    summaries = {s.type: (s.count, s.attributes) for s in city.type_summaries("")}
    assert summaries[iri("ParkingSpot")][0] == 4
    assert summaries[iri("Device")] == (1, [iri("status"), iri("width")])
    assert summaries[iri("OffStreetParking")] == (
        1,
        sorted(iri(n) for n in ("availableSpotNumber", "location", "name", "totalSpotNumber")),
    )
    assert iri("chargingPoint") in summaries[iri("ParkingSpot")][1]

    attributes = {s.name: (s.count, s.types) for s in city.attribute_summaries("")}
    assert attributes[iri("status")] == (4, sorted([iri("Device"), iri("ParkingSpot")]))
    assert attributes[iri("name")] == (4, sorted([iri("OffStreetParking"), iri("ParkingSpot")]))
    assert attributes[iri("availableSpotNumber")] == (1, [iri("OffStreetParking")])

    assert [entity.id for entity in city.entities_of_type("", iri("Device"))] == [E]
    assert [entity.id for entity in city.entities_of_type("", iri("ParkingSpot"))] == [A, B, C, E]
    assert city.type_summaries("another-tenant") == []
