"""What the `smartcity district ...` and `smartcity import osm` commands do, with progress shown."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartcity.platform import Platform
from smartcity.sim.district import load_district
from smartcity.sim.generate import assets_geojson, generate_assets
from smartcity.sim.loader import LoadReport, load_district_into
from smartcity.sim.model import District
from smartcity.sim.osm_import import import_osm
from smartcity.sim.roads import RoadGraph


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def load_with_progress(
    platform: Platform, district_path: Path | None, console: Console | None = None
) -> LoadReport:
    """Load a district into the platform, drawing a progress bar; print what changed."""
    console = console or Console(stderr=True)
    district = load_district(district_path)
    with _progress(console) as progress:
        task = progress.add_task(f"loading {district.id}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = load_district_into(platform, district, progress=advance)
    console.print(
        f"district {report.district}: {report.total} entities "
        f"({report.created} created, {report.updated} updated, {report.unchanged} unchanged)"
    )
    return report


def write_assets(district_path: Path | None, out: Path, seed: int | None) -> int:
    """Write the generated assets of a district to a GeoJSON file; return how many."""
    district = load_district(district_path)
    if seed is not None:
        district.seed = seed
    assets = generate_assets(district)
    out.write_bytes(assets_geojson(assets))
    return len(assets)


def summary_table(district: District) -> Table:
    """Return a table of what a district holds and generates."""
    graph = RoadGraph(district)
    assets = Counter(asset.kind for asset in generate_assets(district, graph))
    table = Table()
    table.add_column("what")
    table.add_column("count", justify="right")
    kilometres = sum(link.length for link in district.links) / 1000
    signals = sum(node.signalised for node in district.nodes.values())
    rows = [
        ("zones", len(district.zones)),
        ("places", len(district.places)),
        ("road nodes (signalised)", f"{len(district.nodes)} ({signals})"),
        ("road links", len(district.links)),
        ("road length, km", f"{kilometres:.1f}"),
        ("road graph connected", "yes" if graph.is_connected() else "NO"),
        ("parking lots", len(district.parking)),
        *((f"generated {kind.replace('_', ' ')}", count) for kind, count in assets.items()),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def check_district(district_path: Path | None, console: Console | None = None) -> bool:
    """Read a district, print what it holds; return whether its road graph is connected."""
    console = console or Console()
    district = load_district(district_path)
    console.print(f"{district.name_ko} · {district.name_en} ({district.id})", soft_wrap=True)
    console.print(summary_table(district))
    if not RoadGraph(district).is_connected():
        console.print(
            "[yellow]some junctions cannot reach others: check one-way links and link ends"
        )
        return False
    return True


def import_osm_with_progress(
    source: Path, out: Path, district_id: str, console: Console | None = None
) -> None:
    """Import an .osm file into district files, with a spinner while osmnx works."""
    console = console or Console(stderr=True)
    with console.status(f"reading {source} with osmnx"):
        report = import_osm(source, out, district_id)
    console.print(
        f"wrote {report.folder}: {report.nodes} road nodes, {report.links} links "
        f"({report.kilometres:.1f} km), {report.zones} zones, {report.places} places, "
        f"{report.parking_lots} parking lots"
    )
    console.print(f"check it with: smartcity district check --district {report.folder}")
