"""The district's parking details: checked on load, turned into entities, and concert Events."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smartcity.broker.codec import parse_entity
from smartcity.broker.contexts import ContextResolver
from smartcity.domains.mobility.parking.directory import read_event
from smartcity.domains.mobility.parking.entities import read_site
from smartcity.domains.mobility.parking.hours import SEOUL
from smartcity.sim.district import builtin_district_path, load_district
from smartcity.sim.entities import CHANGDONG_CONTEXT_URL
from smartcity.sim.events import concert_entities
from smartcity.sim.model import District, DistrictError
from smartcity.sim.scenario import load_scenario
from smartcity.sim.seed import data_path


def test_changdong_lots_have_tariffs_hours_and_park_and_ride(changdong: District) -> None:
    details = changdong.parking_details
    assert details is not None
    assert set(details.lots) == {lot.id for lot in changdong.parking}
    assert details.tariffs["public-tier-3"]["base_fee"] == 250
    hosts = {site["sharedParking"]["host"] for site in details.sites if "sharedParking" in site}
    assert hosts == {"church", "school", "apartment", "office"}


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "changdong"
    shutil.copytree(builtin_district_path(), folder)
    return folder


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "unit_fee: 250,",
            "unit_fee: 255,",
            "tariffs.public-tier-3: unit_fee: Input should be a multiple",
        ),
        ("  seoul-arena: {tariff: arena", "  seoul-arina: {tariff: arena", "no lot 'seoul-arina'"),
        (
            '{tariff: riverside, openingHours: "Mo-Su 00:00-24:00"}\n  jungnangcheon',
            '{tariff: river, openingHours: "Mo-Su 00:00-24:00"}\n  jungnangcheon',
            "tariff: no tariff 'river'",
        ),
        ('windows: "Mo-Sa 08', 'windows: "Mo-Sa 8', "sharedParking.windows"),
        (
            'permitActiveHours: "Mo-Fr 09:00-18:00"',
            'permitHours: "Mo-Fr 09:00-18:00"',
            "unknown keys ['permitHours']",
        ),
    ],
)
def test_mistakes_name_the_file_and_the_member(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    folder = _copy(tmp_path)
    details = folder / "parking_details.yaml"
    text = details.read_text(encoding="utf-8")
    assert old in text
    details.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DistrictError, match=r"parking_details\.yaml") as raised:
        load_district(folder)
    assert message in raised.value.detail


def test_a_concert_becomes_an_event_parking_guidance_reads(changdong: District) -> None:
    scenario = load_scenario("concert-night", changdong)
    (raw,) = concert_entities(scenario.concerts, changdong)
    resolver = ContextResolver(allowed_hosts=[])
    resolver.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    stored = parse_entity(raw, resolver.resolve(CHANGDONG_CONTEXT_URL), "")
    event = read_event(stored)
    assert event is not None
    assert event.kind == "concert"
    assert event.start.astimezone(SEOUL).strftime("%H:%M") == "19:30"
    assert event.end.astimezone(SEOUL).strftime("%H:%M") == "22:30"
    assert event.name_en == "Concert at Seoul Arena (site)"
    resolver.close()


def test_shared_sites_read_as_sites(changdong_entities: list[dict[str, object]]) -> None:
    resolver = ContextResolver(allowed_hosts=[])
    resolver.preload_file(CHANGDONG_CONTEXT_URL, data_path("changdong-context.jsonld"))
    ctx = resolver.resolve(CHANGDONG_CONTEXT_URL)
    sites = [
        read_site(parse_entity(e, ctx, ""))
        for e in changdong_entities
        if e["type"] in ("OffStreetParking", "OnStreetParking")
    ]
    assert len(sites) == 31
    assert [s.problems for s in sites if s.problems] == []
    assert all(s.tariff is not None for s in sites if s.id.endswith("-shared"))
    zone = next(s for s in sites if s.id.endswith("chang-2-dong-resident-a"))
    assert zone.resident_hours is not None
    assert zone.resident_hours.text == "Mo-Fr 09:00-18:00"
    resolver.close()
