"""H3 heatmaps (热力图) of point layers: ``/api/v1/heatmap`` and its XYZ tiles.

``GET /api/v1/heatmap?layer=parts&res=9&bbox=&bbox-crs=&from=&to=`` counts a point layer's
points per H3 cell (res 7–11) as a GeoJSON FeatureCollection of hexagons; ``f=mvt`` with
``z``/``x``/``y`` (or ``GET /api/v1/heatmap/tiles/{z}/{x}/{y}?layer=&res=``) returns the
cells touching that WebMercatorQuad tile as a Mapbox vector tile (layer ``heatmap``; 204 when
empty). See :mod:`spatial.heatmap` for how cells are computed.

Access: ``layer_access("layer")`` — public layers (部件) are open, cases need ``cases:read``
and are counted within the caller's data scope (数据范围). Caching: the ETag names the layer's
change version (``city.layer_versions``) and the request; for a non-public layer it also names
the principal (and the area polygons' versions), with ``Cache-Control: private``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import get_conn, get_registry
from api.security.policy import layer_access
from layers.registry import LayerRegistry, LayerSpec
from spatial.errors import FieldIssue, InvalidInput
from spatial.heatmap import (
    OUTPUT_CRS,
    STORED_RES,
    HeatmapQuery,
    HeatmapSettings,
    Tile,
    aggregate,
    check_res,
    check_tile,
    geojson,
    has_h3,
    parse_bbox,
    point_layer,
    render_mvt,
    time_window,
    touching,
    versions,
)
from spatial.security.principal import Principal
from spatial.security.scope import AREA_TABLES

TAG = "热力图 (heatmaps)"
MVT = "application/vnd.mapbox-vector-tile"
GEOJSON = "application/geo+json"
FORMATS = ("json", "mvt")

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Registry = Annotated[LayerRegistry, Depends(get_registry)]
Reader = Annotated[Principal, Depends(layer_access("layer"))]
Layer = Annotated[str, Query(description="a point layer id: parts, cases, pois, addresses, …")]
Res = Annotated[int, Query(description="H3 resolution 7–11 (≤ 9 rolls the stored cells up)")]
From = Annotated[str | None, Query(alias="from", description="start (inclusive), RFC 3339/date")]
To = Annotated[str | None, Query(description="end (exclusive; a date covers its whole day)")]
Fmt = Annotated[str | None, Query(description="json (GeoJSON, default) or mvt")]
FormatAlias = Annotated[str | None, Query(alias="format", description="alias of f")]
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}, MVT: {}}, "description": "Hexagons with counts"},
    204: {"description": "Empty vector tile"},
    304: {"description": "Not modified (If-None-Match)"},
}


def _format(f: str | None, alias: str | None) -> str:
    value = (alias or f or "json").lower()
    if value in ("geojson", "application/geo+json"):
        value = "json"
    if value not in FORMATS or (f and alias and f.lower() != alias.lower()):
        name = "format" if alias else "f"
        raise InvalidInput(f"Unsupported format '{value}'", [FieldIssue(name, "json or mvt")])
    return value


def heatmap_router(settings: HeatmapSettings | None = None) -> APIRouter:
    """Build the heatmap router."""
    config = settings or HeatmapSettings()
    router = APIRouter(prefix="/api/v1/heatmap", tags=[TAG])
    stored_cells: dict[str, bool] = {}

    async def stored(conn: psycopg.AsyncConnection, spec: LayerSpec) -> bool:
        if spec.id not in stored_cells:
            stored_cells[spec.id] = await has_h3(conn, spec)
        return stored_cells[spec.id]

    async def cache_headers(
        conn: psycopg.AsyncConnection, request: Request, q: HeatmapQuery, principal: Principal
    ) -> dict[str, str]:
        """ETag (layer version + request [+ principal]) and Cache-Control."""
        spec = q.spec
        found = await versions(conn, [spec.table, *AREA_TABLES])
        audience = "public" if spec.public else "private"
        headers = {"Content-Crs": f"<{OUTPUT_CRS}>"}
        if spec.table not in found:
            headers["Cache-Control"] = f"{audience}, no-cache"
            return headers
        seed = [
            found[spec.table],
            str(request.url.path),
            sorted(request.query_params.multi_items()),
        ]
        if not spec.public:
            seed += [principal.kind, principal.id, repr(principal.scope)]
            seed += [found.get(t) for t in AREA_TABLES]
            headers["Vary"] = "Authorization"
        digest = hashlib.sha1(repr(seed).encode()).hexdigest()[:16]
        headers["ETag"] = f'"{found[spec.table]}-{digest}"'
        headers["Cache-Control"] = f"{audience}, max-age={config.max_age_s}"
        return headers

    async def answer(
        conn: psycopg.AsyncConnection,
        request: Request,
        q: HeatmapQuery,
        principal: Principal,
        fmt: str,
        tile: Tile | None,
        geometry: bool = True,
    ) -> Response:
        headers = await cache_headers(conn, request, q, principal)
        etag = headers.get("ETag")
        if etag and etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        heatmap = await aggregate(
            conn, q, stored=await stored(conn, q.spec), max_fine_points=config.max_fine_points
        )
        if fmt == "mvt" and tile is not None:
            data = await render_mvt(conn, heatmap, tile)
            if not data:
                return Response(status_code=204, headers=headers)
            return Response(data, media_type=MVT, headers=headers)
        if tile is not None:
            heatmap = touching(heatmap, tile.bounds())
        meta: dict[str, Any] = {"layer": q.spec.id}
        if q.bbox is not None and tile is None:
            meta["bbox"] = list(q.bbox)
        if tile is not None:
            meta["tile"] = {"z": tile.z, "x": tile.x, "y": tile.y}
        meta |= {"from": q.start and q.start.isoformat(), "to": q.end and q.end.isoformat()}
        body = geojson(heatmap, meta, geometry=geometry)
        return Response(body, media_type=GEOJSON, headers=headers)

    def build_query(
        registry: LayerRegistry,
        principal: Principal,
        layer: str,
        res: int,
        bbox: tuple[float, float, float, float] | None,
        start: str | None,
        end: str | None,
    ) -> HeatmapQuery:
        spec = point_layer(registry, layer)
        lo, hi = time_window(spec, start, end)
        return HeatmapQuery(spec, check_res(res), bbox, lo, hi, principal.scope)

    @router.get(
        "",
        operation_id="getHeatmap",
        response_class=Response,
        responses=RESPONSES,
        summary="H3 heatmap of a point layer (GeoJSON, or MVT for one tile)",
    )
    async def heatmap(
        request: Request,
        principal: Reader,
        conn: Conn,
        registry: Registry,
        layer: Layer,
        res: Res = STORED_RES,
        bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat")] = None,
        bbox_crs: Annotated[
            str | None, Query(alias="bbox-crs", description="cgcs2000 (default), wgs84, …")
        ] = None,
        start: From = None,
        to: To = None,
        f: Fmt = None,
        format_: FormatAlias = None,
        z: Annotated[int | None, Query(description="tile zoom (f=mvt)")] = None,
        x: Annotated[int | None, Query(description="tile column (f=mvt)")] = None,
        y: Annotated[int | None, Query(description="tile row (f=mvt)")] = None,
        geometry: Annotated[bool, Query(description="false: cells and counts only")] = True,
    ) -> Response:
        """Count a point layer's points per H3 cell (cells in CGCS2000 lon/lat)."""
        fmt = _format(f, format_)
        tile = None
        if fmt == "mvt" or (z, x, y) != (None, None, None):
            missing = [n for n, v in (("z", z), ("x", x), ("y", y)) if v is None]
            if missing:
                issues = [FieldIssue(n, "required for a tile") for n in missing]
                raise InvalidInput("A vector tile needs z, x and y.", issues)
            if bbox:
                issue = FieldIssue("bbox", "not with a tile (z/x/y select the area)")
                raise InvalidInput("Give either bbox or a tile.", [issue])
        q = build_query(registry, principal, layer, res, None, start, to)
        if (z, x, y) != (None, None, None):
            tile = check_tile(int(z or 0), int(x or 0), int(y or 0))
            q = HeatmapQuery(q.spec, q.res, tile.search_bounds(q.res), q.start, q.end, q.scope)
        elif bbox:
            q = HeatmapQuery(q.spec, q.res, parse_bbox(bbox, bbox_crs), q.start, q.end, q.scope)
        return await answer(conn, request, q, principal, fmt, tile, geometry)

    @router.get(
        "/tiles/{z}/{x}/{y}",
        operation_id="getHeatmapTile",
        response_class=Response,
        responses=RESPONSES,
        summary="H3 heatmap vector tile (WebMercatorQuad XYZ)",
    )
    async def heatmap_tile(
        request: Request,
        z: int,
        x: int,
        y: int,
        principal: Reader,
        conn: Conn,
        registry: Registry,
        layer: Layer,
        res: Res = STORED_RES,
        start: From = None,
        to: To = None,
        f: Fmt = None,
        format_: FormatAlias = None,
    ) -> Response:
        """The cells touching one tile with their full counts (MVT layer ``heatmap``)."""
        fmt = _format(f, format_) if (f or format_) else "mvt"
        tile = check_tile(z, x, y)
        q = build_query(registry, principal, layer, res, None, start, to)
        q = HeatmapQuery(q.spec, q.res, tile.search_bounds(q.res), q.start, q.end, q.scope)
        return await answer(conn, request, q, principal, fmt, tile)

    return router
