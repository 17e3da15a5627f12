"""JSON documents of OGC API – Tiles (tile matrix sets, tilesets) and TileJSON 3.0.0."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from layers.registry import LayerSpec
from spatial.tiles_sql import BUFFER, EXTENT
from spatial.tms import WEB_MERCATOR_QUAD, Bounds, TileGrid, tile_grids

MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
TILEJSON = "application/vnd.mapbox.tile+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
GEOMETRY_TYPES = {"POINT": "points", "MULTILINESTRING": "lines"}
TILES_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilematrixset",
]
"""Conformance classes of these routes, for the ``/ogc/conformance`` document."""
JSON_TYPES = {
    "integer": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "numeric": "number",
    "double precision": "number",
    "real": "number",
    "boolean": "boolean",
}
TILEJSON_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}


@dataclass(frozen=True)
class TilesetInfo:
    """What a tileset document needs beyond the spec and the grid."""

    base: str
    properties: dict[str, str]
    extent: Bounds | None
    version: int | None


@lru_cache(maxsize=8192)
def tile_limits(grid_id: str, z: int, extent: Bounds) -> tuple[int, int, int, int]:
    """``(min_col, min_row, max_col, max_row)`` of a layer's tiles, with the MVT buffer."""
    return tile_grids()[grid_id].tile_limits(z, extent, BUFFER / EXTENT)


def _link(href: str, rel: str, type_: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"href": href, "rel": rel, "type": type_, "title": title, **extra}


def tiles_links(base: str, collection_id: str | None = None) -> list[dict[str, Any]]:
    """Links for the landing page (no id) or a collection, for the ``/ogc`` documents."""
    if collection_id is None:
        href = f"{base}/ogc/tileMatrixSets"
        return [_link(href, f"{REL}tiling-schemes", JSON, "Tile matrix sets")]
    href = f"{base}/ogc/collections/{collection_id}/tiles"
    return [_link(href, f"{REL}tilesets-vector", JSON, "Vector tilesets")]


def tms_list(base: str) -> dict[str, Any]:
    """``/ogc/tileMatrixSets``."""
    items = []
    for grid in tile_grids().values():
        item = {"id": grid.id, "title": grid.tms.title, "crs": grid.crs}
        if grid.uri:
            item["uri"] = grid.uri
        href = f"{base}/ogc/tileMatrixSets/{grid.id}"
        item["links"] = [_link(href, f"{REL}tiling-scheme", JSON, f"{grid.id} definition")]
        items.append(item)
    self_link = _link(f"{base}/ogc/tileMatrixSets", "self", JSON, "Tile matrix sets")
    return {"tileMatrixSets": items, "links": [self_link]}


def tms_document(grid: TileGrid) -> dict[str, Any]:
    """``/ogc/tileMatrixSets/{id}``: the OGC TMS 2.0 JSON encoding."""
    return grid.tms.model_dump(mode="json", exclude_none=True)


def json_schema_type(pg_type: str) -> dict[str, str]:
    """JSON Schema type of a PostgreSQL column type."""
    if pg_type == "date":
        return {"type": "string", "format": "date"}
    if pg_type.startswith("timestamp"):
        return {"type": "string", "format": "date-time"}
    return {"type": JSON_TYPES.get(pg_type, "string")}


def _urls(base: str, spec: LayerSpec, grid: TileGrid) -> tuple[str, str, str]:
    tileset = f"{base}/ogc/collections/{spec.id}/tiles/{grid.id}"
    template = f"{tileset}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
    return tileset, template, f"{base}/ogc/tileMatrixSets/{grid.id}"


def _title(spec: LayerSpec, grid: TileGrid) -> str:
    return f"{spec.title} ({spec.id}) — vector tiles, {grid.id}"


def tileset_summary(base: str, spec: LayerSpec, grid: TileGrid) -> dict[str, Any]:
    """One entry of ``/ogc/collections/{id}/tiles``."""
    tileset, template, tms = _urls(base, spec, grid)
    doc: dict[str, Any] = {"title": _title(spec, grid), "dataType": "vector"}
    doc["crs"] = grid.crs
    if grid.uri:
        doc["tileMatrixSetURI"] = grid.uri
    doc["links"] = [
        _link(tileset, "self", JSON, "Tileset metadata"),
        _link(tms, f"{REL}tiling-scheme", JSON, f"{grid.id} definition"),
        _link(template, "item", MVT, "Tiles (template)", templated=True),
    ]
    return doc


def tileset_list(base: str, spec: LayerSpec) -> dict[str, Any]:
    """``/ogc/collections/{id}/tiles``."""
    here = f"{base}/ogc/collections/{spec.id}/tiles"
    return {
        "tilesets": [tileset_summary(base, spec, grid) for grid in tile_grids().values()],
        "links": [
            _link(here, "self", JSON, f"{spec.title} tilesets"),
            _link(f"{base}/ogc/collections/{spec.id}", "collection", JSON, spec.title),
        ],
    }


def limits(grid: TileGrid, spec: LayerSpec, extent: Bounds | None) -> list[dict[str, Any]]:
    """``tileMatrixSetLimits``: tiles touching the layer extent (whole matrix when empty)."""
    out = []
    for z in grid.zoom_range(spec.tiles):
        if extent is None:
            m = grid.matrix(z)
            cols, rows = (0, m.matrixWidth - 1), (0, m.matrixHeight - 1)
        else:
            c0, r0, c1, r1 = tile_limits(grid.id, z, extent)
            cols, rows = (c0, c1), (r0, r1)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": rows[0],
                "maxTileRow": rows[1],
                "minTileCol": cols[0],
                "maxTileCol": cols[1],
            }
        )
    return out


def _bbox(extent: Bounds) -> dict[str, Any]:
    return {"lowerLeft": [extent[0], extent[1]], "upperRight": [extent[2], extent[3]], "crs": CRS84}


def tileset(spec: LayerSpec, grid: TileGrid, info: TilesetInfo) -> dict[str, Any]:
    """``/ogc/collections/{id}/tiles/{tms}``: tileset metadata with its one vector layer."""
    doc = tileset_summary(info.base, spec, grid)
    _, _, tms_url = _urls(info.base, spec, grid)
    zooms = grid.zoom_range(spec.tiles)
    doc["description"] = spec.description or spec.title
    doc["tileMatrixSetDefinition"] = tms_url
    doc["mediaTypes"] = [MVT]
    if info.version is not None:
        doc["version"] = str(info.version)
    doc["tileMatrixSetLimits"] = limits(grid, spec, info.extent)
    layer: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "dataType": "vector",
        "geometryType": GEOMETRY_TYPES.get(spec.geometry_type, "polygons"),
        "minTileMatrix": str(zooms.start),
        "maxTileMatrix": str(zooms.stop - 1),
        "propertiesSchema": {
            "type": "object",
            "properties": {k: json_schema_type(v) for k, v in info.properties.items()},
        },
        "links": [_link(f"{info.base}/ogc/collections/{spec.id}", f"{REL}geodata", JSON, "Data")],
    }
    if info.extent is not None:
        doc["boundingBox"] = layer["boundingBox"] = _bbox(info.extent)
        e = info.extent
        doc["centerPoint"] = {
            "coordinates": [(e[0] + e[2]) / 2, (e[1] + e[3]) / 2],
            "crs": CRS84,
            "tileMatrix": str(zooms.start),
        }
    doc["layers"] = [layer]
    doc["links"].append(
        _link(f"{info.base}/ogc/collections/{spec.id}", f"{REL}geodata", JSON, "Data")
    )
    if grid.id == WEB_MERCATOR_QUAD:
        doc["links"].append(
            _link(f"{info.base}/tiles/{spec.id}/tilejson.json", "alternate", TILEJSON, "TileJSON")
        )
    return doc


def tilejson(spec: LayerSpec, grid: TileGrid, info: TilesetInfo) -> dict[str, Any]:
    """TileJSON 3.0.0 of the XYZ (WebMercatorQuad) tiles."""
    zooms = grid.zoom_range(spec.tiles)
    fields = {
        name: TILEJSON_TYPES.get(json_schema_type(kind)["type"], "String")
        for name, kind in info.properties.items()
    }
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": spec.id,
        "description": spec.title,
        "scheme": "xyz",
        "tiles": [f"{info.base}/tiles/{spec.id}/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": zooms.start,
        "maxzoom": zooms.stop - 1,
        "vector_layers": [
            {
                "id": spec.id,
                "description": spec.title,
                "fields": fields,
                "minzoom": zooms.start,
                "maxzoom": zooms.stop - 1,
            }
        ],
    }
    if info.extent is not None:
        e = info.extent
        doc["bounds"] = list(e)
        doc["center"] = [(e[0] + e[2]) / 2, (e[1] + e[3]) / 2, zooms.start]
    return doc
