"""The district as GeoJSON (zones, roads, places) and the MapLibre style that draws it.

The style has GeoJSON sources only: no tiles (unless `map_tile_url` names a tile server), no
sprite and no glyphs, so nothing is fetched from outside the platform. Labels are HTML markers
the page places itself, in the browser's own fonts, which also lets them switch language.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import MultiPoint, shape

from smartcity.sim.model import District
from smartcity.web.livemap.catalog import LAYERS, MapLayer

FeatureCollection = dict[str, Any]

ROAD_COLOURS = {
    "motorway": "#f28c28",
    "trunk": "#f6a545",
    "primary": "#fcd34d",
    "secondary": "#fde68a",
    "tertiary": "#ffffff",
    "residential": "#ffffff",
    "service": "#f1f5f9",
}
PLACE_COLOURS = {
    "park": "#bbf7d0",
    "stream": "#60a5fa",
    "apartment": "#fde7c7",
    "development": "#e9d5ff",
    "landmark": "#fecaca",
}
LABELLED_PLACES = frozenset({"station", "landmark", "development", "culture", "office"})
"""Kinds of places the page names on the map (the many others are named in popups)."""


def road_class(raw: str) -> str:
    """Return the drawing class of an OSM-style road class ("primary_link" -> "primary")."""
    base = raw.removesuffix("_link")
    return base if base in ROAD_COLOURS else "service"


def segment_id(district: District, link_id: str) -> str:
    """Return the id of the RoadSegment entity the district loader makes for a link."""
    return f"urn:ngsi-ld:RoadSegment:{district.id}-{link_id}"


def _collection(features: list[dict[str, Any]]) -> FeatureCollection:
    return {"type": "FeatureCollection", "features": features}


def zones_geojson(district: District) -> FeatureCollection:
    """Return the district's zones (administrative dongs) as polygons with their names."""
    return _collection(
        [
            {
                "type": "Feature",
                "id": index,
                "geometry": zone.geometry,
                "properties": {
                    "id": zone.id,
                    "name_ko": zone.name_ko,
                    "name_en": zone.name_en,
                    "parent": zone.parent,
                    "label": list(_label_point(zone.geometry)),
                },
            }
            for index, zone in enumerate(district.zones)
        ]
    )


def roads_geojson(district: District) -> FeatureCollection:
    """Return every link of the road graph as a line with its class, lanes and speed limit."""
    return _collection(
        [
            {
                "type": "Feature",
                "id": index,
                "geometry": {"type": "LineString", "coordinates": [list(p) for p in link.points]},
                "properties": {
                    "id": segment_id(district, link.id),
                    "link": link.id,
                    "name_ko": link.name_ko,
                    "name_en": link.name_en,
                    "class": road_class(link.road_class),
                    "road_class": link.road_class,
                    "lanes": link.lanes,
                    "total_lanes": link.lanes * (1 if link.oneway else 2),
                    "speed_limit": link.speed_limit,
                    "oneway": link.oneway,
                },
            }
            for index, link in enumerate(district.links)
        ]
    )


def places_geojson(district: District) -> FeatureCollection:
    """Return the district's curated places with their kind and names."""
    return _collection(
        [
            {
                "type": "Feature",
                "id": index,
                "geometry": place.geometry,
                "properties": {
                    "id": place.id,
                    "kind": place.kind,
                    "name_ko": place.name_ko,
                    "name_en": place.name_en,
                    "labelled": place.kind in LABELLED_PLACES,
                    "label": list(_label_point(place.geometry)),
                },
            }
            for index, place in enumerate(district.places)
        ]
    )


def district_bounds(district: District) -> list[float]:
    """Return [west, south, east, north] around the zones, roads and places."""
    points = [p for link in district.links for p in link.points]
    geometries = [zone.geometry for zone in district.zones]
    geometries.extend(place.geometry for place in district.places)
    for geometry in geometries:
        bounds = shape(geometry).bounds
        points.extend([(bounds[0], bounds[1]), (bounds[2], bounds[3])])
    west, south, east, north = MultiPoint(points).bounds
    return [round(west, 6), round(south, 6), round(east, 6), round(north, 6)]


def _label_point(geometry: dict[str, Any]) -> tuple[float, float]:
    point = shape(geometry).representative_point()
    return (round(point.x, 6), round(point.y, 6))


def live_source(layer: MapLayer) -> str:
    """Return the name of the style source the page fills with a layer's entities."""
    return f"live-{layer.id}"


TRAFFIC_SEGMENTS = "live-traffic-segments"
"""The source of road segments coloured by the speed their detectors measure."""


CLUSTER_RADIUS = 42
"""Pixels within which a clustered style gathers points."""
CLUSTER_MAX_ZOOM = 16
"""Above this zoom every point of a clustered style is drawn on its own."""


def cluster_layer(layer: MapLayer) -> str:
    """Return the id of the style layer that draws a clustered layer's clusters."""
    return f"{live_source(layer)}-clusters"


def map_style(
    district: District,
    base_url: str,
    context_url: str,
    *,
    cluster: bool = False,
    tiles: str = "",
    attribution: str = "",
) -> dict[str, Any]:
    """Return the MapLibre style (version 8) of the district; `base_url` ends without '/'.

    Its metadata tells the page the district's bounds, the layers, and the @context to read
    the entities with. `cluster`: the layers that may (`MapLayer.cluster`) gather their points
    into clusters in the browser (MapLibre's GeoJSON clustering), so thousands of devices
    stay smooth; the live map shows every point, the operations dashboard clusters. `tiles`:
    a raster tile template drawn under the district (the district's fills turn translucent).
    """
    west, south, east, north = district_bounds(district)
    empty = _collection([])
    sources: dict[str, Any] = {
        name: {"type": "geojson", "data": f"{base_url}/map/district/{name}.geojson"}
        for name in ("zones", "roads", "places")
    }
    sources[TRAFFIC_SEGMENTS] = {"type": "geojson", "data": empty}
    for layer in LAYERS:
        source: dict[str, Any] = {"type": "geojson", "data": empty}
        if cluster and layer.cluster:
            source.update(
                cluster=True, clusterRadius=CLUSTER_RADIUS, clusterMaxZoom=CLUSTER_MAX_ZOOM
            )
        sources[live_source(layer)] = source
    base = _base_layers()
    if tiles:
        sources["basemap"] = {
            "type": "raster",
            "tiles": [tiles],
            "tileSize": 256,
            "maxzoom": 19,
            "attribution": attribution,
        }
        base = [base[0], {"id": "basemap", "type": "raster", "source": "basemap"}, *base[1:]]
        for drawn in base:
            if drawn["id"] in ("zones-fill", "places-area"):
                drawn["paint"] = {**drawn["paint"], "fill-opacity": 0.25}
    return {
        "version": 8,
        "name": f"{district.name_en} · {district.name_ko}",
        "metadata": {
            "smartcity:district": district.id,
            "smartcity:bounds": [west, south, east, north],
            "smartcity:layers": [layer.as_json() for layer in LAYERS],
            "smartcity:context": context_url,
            "smartcity:clustered": [layer.id for layer in LAYERS if cluster and layer.cluster],
        },
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6)],
        "zoom": 14,
        "sources": sources,
        "layers": [*base, *_traffic_layers(), *_live_layers(cluster)],
    }


def _base_layers() -> list[dict[str, Any]]:
    place_colour = ["match", ["get", "kind"], *_pairs(PLACE_COLOURS), "#e5e7eb"]
    by_zoom = ["interpolate", ["exponential", 1.5], ["zoom"]]
    lanes = ["get", "total_lanes"]
    return [
        {"id": "background", "type": "background", "paint": {"background-color": "#eef2f0"}},
        {
            "id": "zones-fill",
            "type": "fill",
            "source": "zones",
            "paint": {"fill-color": "#f8faf9", "fill-outline-color": "#94a3b8"},
        },
        {
            "id": "places-area",
            "type": "fill",
            "source": "places",
            "filter": ["==", ["geometry-type"], "Polygon"],
            "paint": {"fill-color": place_colour, "fill-opacity": 0.8},
        },
        {
            "id": "zones-line",
            "type": "line",
            "source": "zones",
            "paint": {"line-color": "#64748b", "line-width": 1.2, "line-dasharray": [4, 2]},
        },
        {
            "id": "places-stream",
            "type": "line",
            "source": "places",
            "filter": ["==", ["geometry-type"], "LineString"],
            "paint": {
                "line-color": PLACE_COLOURS["stream"],
                "line-width": [*by_zoom, 12, 2, 17, 14],
            },
        },
        {
            "id": "roads-casing",
            "type": "line",
            "source": "roads",
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {
                "line-color": "#94a3b8",
                "line-width": [*by_zoom, 12, ["+", 1.5, ["*", 0.5, lanes]], 18, ["*", 7, lanes]],
            },
        },
        {
            "id": "roads",
            "type": "line",
            "source": "roads",
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {
                "line-color": ["match", ["get", "class"], *_pairs(ROAD_COLOURS), "#ffffff"],
                "line-width": [*by_zoom, 12, ["*", 0.5, lanes], 18, ["*", 6, lanes]],
            },
        },
        {
            "id": "places-point",
            "type": "circle",
            "source": "places",
            "filter": ["==", ["geometry-type"], "Point"],
            "paint": {
                "circle-radius": 3,
                "circle-color": "#334155",
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1,
            },
        },
    ]


def _traffic_layers() -> list[dict[str, Any]]:
    traffic = next(layer for layer in LAYERS if layer.id == "traffic")
    return [
        {
            "id": TRAFFIC_SEGMENTS,
            "type": "line",
            "source": TRAFFIC_SEGMENTS,
            "layout": {"line-cap": "round"},
            "paint": {
                "line-color": _status_colour(traffic),
                "line-width": ["interpolate", ["linear"], ["zoom"], 12, 2, 18, 8],
                "line-opacity": 0.85,
            },
        }
    ]


def _clusters(layer: MapLayer) -> dict[str, Any]:
    """Return the style layer of a layer's clusters: its colour, bigger as it holds more."""
    count = ["get", "point_count"]
    return {
        "id": cluster_layer(layer),
        "type": "circle",
        "source": live_source(layer),
        "filter": ["has", "point_count"],
        "layout": {"visibility": "visible" if layer.shown else "none"},
        "paint": {
            "circle-color": layer.statuses[0].colour,
            "circle-opacity": 0.82,
            "circle-radius": ["step", count, 11, 10, 14, 50, 18, 200, 23],
            "circle-stroke-color": "#ffffff",
            "circle-stroke-width": 2,
        },
    }


def _live_layers(cluster: bool = False) -> list[dict[str, Any]]:
    layers = []
    for layer in sorted(LAYERS, key=lambda x: x.z):
        radius = layer.radius
        clustered = cluster and layer.cluster
        if clustered:
            layers.append(_clusters(layer))
        layers.append(
            {
                "id": live_source(layer),
                **({"filter": ["!", ["has", "point_count"]]} if clustered else {}),
                "type": "circle",
                "source": live_source(layer),
                "layout": {"visibility": "visible" if layer.shown else "none"},
                "paint": {
                    "circle-color": _status_colour(layer),
                    "circle-radius": [
                        "interpolate",
                        ["linear"],
                        ["zoom"],
                        12,
                        max(radius * 0.45, 1.5),
                        15,
                        radius,
                        18,
                        radius * 2,
                    ],
                    # A stale reading gets a thick dark ring (see the legend).
                    "circle-stroke-color": [
                        "case",
                        ["boolean", _state("stale", False), False],
                        "#111827",
                        "#ffffff",
                    ],
                    "circle-stroke-width": [
                        "case",
                        ["boolean", _state("stale", False), False],
                        3,
                        1,
                    ],
                    "circle-opacity": [
                        "case",
                        ["boolean", _state("stale", False), False],
                        0.55,
                        0.95,
                    ],
                },
            }
        )
    return layers


def _status_colour(layer: MapLayer) -> list[Any]:
    pairs = {status.id: status.colour for status in layer.statuses}
    return ["match", _state("status", ""), *_pairs(pairs), "#9ca3af"]


def _state(name: str, default: Any) -> list[Any]:
    """Return an expression for a feature's value: its feature state (the page sets it as
    entities change, without setting the source's data again), else its property."""
    return ["coalesce", ["feature-state", name], ["get", name], default]


def _pairs(mapping: dict[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]
