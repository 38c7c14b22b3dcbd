"""The `smartcity district` and `smartcity import osm` commands, as a person would type them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smartcity.cli import main
from smartcity.sim.district import builtin_district_path
from tests.serving import create_admin_key, running_server
from tests.sim.test_osm_import import write_osm


def _small_district(tmp_path: Path) -> Path:
    folder = tmp_path / "district"
    shutil.copytree(builtin_district_path(), folder)
    manifest = folder / "district.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").split("generate:")[0])
    return folder


def test_check_prints_what_the_district_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["district", "check"]) == 0
    shown = capsys.readouterr().out
    assert "Changdong new economic center" in shown
    assert "generated streetlights" in shown
    assert "800" in shown


def test_generate_writes_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.geojson", tmp_path / "b.geojson", tmp_path / "c.geojson"
    assert main(["district", "generate", "--out", str(first)]) == 0
    assert main(["district", "generate", "--out", str(second)]) == 0
    assert main(["district", "generate", "--out", str(other), "--seed", "7"]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_load_twice_reports_nothing_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    folder = str(_small_district(tmp_path))
    assert main(["district", "load", "--district", folder, "--database-url", database]) == 0
    assert " 0 unchanged" in capsys.readouterr().err
    assert main(["district", "load", "--district", folder, "--database-url", database]) == 0
    assert "0 created, 0 updated" in capsys.readouterr().err


def test_a_bad_district_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["district", "check", "--district", str(tmp_path)]) == 2
    assert "needs a district.yaml" in capsys.readouterr().err


def test_import_osm_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("osmnx", reason="osmnx is the optional extra smartcity[osm]")
    source = write_osm(tmp_path / "town.osm")
    out = tmp_path / "town"
    assert main(["import", "osm", str(source), "--out", str(out), "--id", "town"]) == 0
    assert "12 links" in capsys.readouterr().err
    assert main(["district", "check", "--district", str(out)]) == 0


def test_import_osm_without_osmnx_says_how_to_install(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['osmnx'] = None\n"
        "from smartcity.cli import main\n"
        f"sys.exit(main(['import', 'osm', {str(tmp_path / 'x.osm')!r}, '--out', 'x']))\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert ran.returncode == 2
    assert "pip install 'smartcity[osm]'" in ran.stderr


def test_serve_with_a_district_answers_queries_about_it(tmp_path: Path) -> None:
    folder = _small_district(tmp_path)
    database = f"sqlite:///{tmp_path / 'served.db'}"
    link = '<urn:smartcity:context:changdong>; rel="http://www.w3.org/ns/json-ld#context"'
    key = create_admin_key(database)
    with running_server(database, "--district", str(folder)) as url:
        found = httpx.get(
            f"{url}/ngsi-ld/v1/entities",
            params={"type": "RoadSegment", "q": 'name=="노해로"', "limit": "100"},
            headers={"Link": link, "X-API-Key": key},
        )
    assert found.status_code == 200, found.text
    assert len(found.json()) == 8
    assert {segment["maximumAllowedSpeed"]["value"] for segment in found.json()} == {50}
