"""Invented, plausible Korean/English names for generated shops, restaurants and culture spots.

The names are made up (a brand word, a kind of place and a branch), never real businesses: they
give the demo map something to show until a city loads its own register of places.
"""

from __future__ import annotations

import random
from typing import Any

from smartcity.sim.model import Place

BRANDS = (
    ("행복", "Haengbok"),
    ("미소", "Miso"),
    ("햇살", "Haetsal"),
    ("다온", "Daon"),
    ("한울", "Hanul"),
    ("푸른", "Pureun"),
    ("소담", "Sodam"),
    ("온새미", "Onsaemi"),
    ("가온", "Gaon"),
    ("늘봄", "Neulbom"),
    ("별빛", "Byeolbit"),
    ("마루", "Maru"),
)

KINDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "food": (
        ("국밥", "Gukbap House", "restaurant"),
        ("치킨", "Fried Chicken", "restaurant"),
        ("카페", "Cafe", "cafe"),
        ("분식", "Snack Bar", "restaurant"),
        ("고깃집", "Korean BBQ", "restaurant"),
        ("베이커리", "Bakery", "bakery"),
        ("칼국수", "Kalguksu Noodles", "restaurant"),
        ("김밥", "Gimbap", "restaurant"),
        ("호프", "Pub", "bar"),
        ("떡집", "Rice Cake Shop", "bakery"),
    ),
    "shopping": (
        ("편의점", "Convenience Store", "convenience"),
        ("약국", "Pharmacy", "pharmacy"),
        ("꽃집", "Florist", "florist"),
        ("문구", "Stationery", "stationery"),
        ("의류", "Clothing", "clothes"),
        ("안경", "Optician", "optician"),
        ("서점", "Bookstore", "books"),
        ("과일가게", "Fruit Shop", "greengrocer"),
    ),
    "culture": (
        ("작은도서관", "Small Library", "library"),
        ("갤러리", "Gallery", "gallery"),
        ("라이브홀", "Live Music Hall", "music_venue"),
        ("녹음 스튜디오", "Recording Studio", "studio"),
        ("공방", "Craft Workshop", "workshop"),
        ("보드게임카페", "Board Game Cafe", "games"),
    ),
}

SHARE = (("food", 5), ("shopping", 3), ("culture", 2))
"""Half food, three tenths shopping, a fifth culture."""


def _branch(anchor: Place) -> tuple[str, str]:
    """Return the branch name a shop near `anchor` would take ("창동역점", "Changdong Station")."""
    return anchor.name_ko.split(" ")[0], anchor.name_en.split(" (")[0]


def invent_point_of_interest(rng: random.Random, anchor: Place, taken: set[str]) -> dict[str, Any]:
    """Return name_ko, name_en and category of a new place near `anchor`, unique in `taken`."""
    category = rng.choices([name for name, _ in SHARE], weights=[w for _, w in SHARE])[0]
    kind_ko, kind_en, subcategory = rng.choice(KINDS[category])
    brand_ko, brand_en = rng.choice(BRANDS)
    branch_ko, branch_en = _branch(anchor)
    name_ko = f"{brand_ko} {kind_ko} {branch_ko}점"
    name_en = f"{brand_en} {kind_en}, {branch_en}"
    number = 2
    while name_ko in taken:
        name_ko = f"{brand_ko} {kind_ko} {branch_ko} {number}호점"
        name_en = f"{brand_en} {kind_en}, {branch_en} no. {number}"
        number += 1
    taken.add(name_ko)
    return {
        "name_ko": name_ko,
        "name_en": name_en,
        "category": [category, subcategory],
        "near": anchor.id,
    }
