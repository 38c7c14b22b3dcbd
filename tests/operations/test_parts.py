"""The plain parts: SOP files, video link signatures, the taxonomy, distances and bearings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.errors import BadRequestData, ConfigurationError, Forbidden
from smartcity.operations.links import LinkClaims, LinkSigner
from smartcity.operations.places import bearing_deg, distance_m, faces, representative_point
from smartcity.operations.sop import Procedures
from smartcity.operations.taxonomy import TYPES, check_type, higher, qualifies, type_of_alert

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def claims(**changes: object) -> LinkClaims:
    values: dict[str, object] = {
        "tenant": "dobong",
        "incident_id": "INC-1",
        "camera_id": "urn:ngsi-ld:Camera:gate-1",
        "principal_id": "p-police",
        "subject": "police",
        "share_id": "s1",
        "mode": "live",
        "expires": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    values.update(changes)
    return LinkClaims(**values)  # type: ignore[arg-type]


def test_shipped_sops_cover_every_type_in_both_languages() -> None:
    procedures = Procedures.load()
    assert [s.id for s in procedures.checklist("crime", "assault")][:2] == [
        "check-cameras",
        "share-police",
    ]
    assert procedures.checklist("crime", "theft") == procedures.checklist("crime")
    assert procedures.checklist("other") == procedures.checklists["default"]
    for key, steps in procedures.checklists.items():
        assert key == "default" or key.split("/")[0] in TYPES
        assert all(step.ko and step.en for step in steps)


def test_a_bad_sop_file_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "sop.yaml"
    cases = {
        "procedures: {crime: [{id: a, ko: 가, en: A}]}": "default",
        "procedures: {ufo: [{id: a, ko: 가, en: A}], default: [{id: a, ko: 가, en: A}]}": "ufo",
        "procedures: {default: [{id: a, ko: 가}]}": "needs text",
        "procedures: {default: [{id: a, ko: 가, en: A}, {id: a, ko: 나, en: B}]}": "same id",
        "nothing: here": "procedures",
    }
    for text, message in cases.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError, match=message):
            Procedures.load(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        Procedures.load(tmp_path / "missing.yaml")


def test_links_verify_only_when_authentic_and_fresh() -> None:
    signer = LinkSigner("secret-" * 6)
    token = signer.sign(claims())
    assert signer.verify(token, NOW).camera_id == "urn:ngsi-ld:Camera:gate-1"
    assert signer.sign(claims()) != token  # a nonce makes each link unique
    with pytest.raises(Forbidden, match="expired"):
        signer.verify(token, NOW + timedelta(minutes=5))
    with pytest.raises(Forbidden, match="not authentic"):
        LinkSigner("another-secret-" * 3).verify(token, NOW)
    signature = token.split(".")[1]
    other = signer.sign(claims(camera_id="urn:ngsi-ld:Camera:gate-2")).split(".")[0]
    with pytest.raises(Forbidden, match="not authentic"):
        signer.verify(f"{other}.{signature}", NOW)  # another camera under this signature


@given(st.text(max_size=200))
def test_any_text_is_refused_or_verified_never_crashes(text: str) -> None:
    signer = LinkSigner("secret-" * 6)
    with pytest.raises(Forbidden):
        signer.verify(text, NOW)


def test_alert_categories_map_to_incident_types() -> None:
    assert type_of_alert("security", "violence") == ("crime", "assault")
    assert type_of_alert("traffic", "carAccident") == ("traffic", "accident")
    assert type_of_alert("weather", "") == ("disaster", "")
    assert type_of_alert("unknown", "unknown") == ("other", "")
    for incident_type, subtype in (type_of_alert("x", s) for s in ("fire", "wandering")):
        check_type(incident_type, subtype)
    with pytest.raises(BadRequestData, match="subtype"):
        check_type("crime", "jaywalking")
    assert higher("low", "critical") == "critical"
    assert qualifies("fire", "arson", ["fire/arson"])
    assert not qualifies("fire", "building", ["fire/arson"])


def test_distances_bearings_and_views() -> None:
    arena = (127.0469, 37.6533)
    north = (127.0469, 37.6533 + 500 / 111_200)
    assert distance_m(arena, north) == pytest.approx(500, rel=0.01)
    assert bearing_deg(arena, north) == pytest.approx(0, abs=0.01)
    assert bearing_deg(north, arena) == pytest.approx(180, abs=0.01)
    assert faces(350, 10)
    assert not faces(90, 270)
    square = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    assert representative_point(square) == (1, 1)
    with pytest.raises(BadRequestData):
        representative_point({"type": "Point", "coordinates": [500, 0]})


def test_operations_settings_are_checked(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from smartcity.config import Settings
    from smartcity.platform import build_platform

    with pytest.raises(ValidationError, match="unknown severities"):
        Settings(ops_escalation_minutes={"urgent": 1})
    with pytest.raises(ValidationError, match="0 \\(never\\) or more"):
        Settings(ops_escalation_minutes={"high": -1})
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        auth_secret="x" * 40,
        ops_video_types=["crime/jaywalking"],
    )
    with pytest.raises(ConfigurationError, match="ops_video_types"):
        build_platform(settings)
