"""H3 heatmaps (热力图) of point layers: point counts per H3 cell, as GeoJSON or MVT.

Any registered point layer (``LayerSpec.is_point``: components 部件, cases 案卷, alarms…) is
counted into H3 cells of resolution 7–11 inside an optional bbox and time window, limited to
the caller's data scope (数据范围, ``scope_condition``) exactly like the feature and tile paths.

Two ways to a cell:

- **stored path** (res ≤ 9): point layers carry ``h3``, the resolution-9 cell as a (positive)
  signed bigint. PostGIS groups by it — for a coarser resolution by its parent, computed with
  bit operations (:func:`parent_masks`: write the resolution into bits 52–55 and fill the digits
  below it with 7s), so a million points never leave the database. Rows whose ``h3`` is NULL
  (e.g. inserted by code that does not fill it) are fetched as coordinates and indexed here.
- **geometry path** (res 10–11, or a table without ``h3``): the points are fetched as two float
  arrays and indexed with h3-py, for at most ``HeatmapSettings.max_fine_points`` points (default
  250,000, about 0.3 s); above that the request is refused with 422 naming ``res`` (narrow the
  bbox or the time window, or use res ≤ 9).

Coordinates: points are stored in CGCS2000 (EPSG:4490) and indexed as if WGS84 — the two agree
within centimetres, far below a res-11 cell (~25 m edge). Hexagons are returned in CGCS2000
lon/lat order (``Content-Crs: <…/EPSG/0/4490>``), which GeoJSON clients may read as CRS84.
A bbox selects the *points* inside it; a cell straddling its edge counts only those points.
A tile selects every cell touching the tile with its full count (points are read from the tile
grown by a cell diameter), and is rendered with ``ST_AsMVT`` from the hexagons passed as WKB.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import numpy as np
import numpy.typing as npt
import orjson
import psycopg
import shapely
from psycopg import sql
from pydantic_settings import BaseSettings, SettingsConfigDict

from layers.registry import LayerRegistry, LayerSpec
from spatial.crs import STORAGE_SRID, crs_uri, parse_client_crs, to_storage
from spatial.errors import FieldIssue, InvalidInput, NotFound, UnprocessableInput
from spatial.security.principal import EVERYTHING, DataScope
from spatial.security.scope import scope_condition

MIN_RES, MAX_RES, STORED_RES = 7, 11, 9
MAX_ZOOM = 24
ALIAS = "f"
"""Alias of the layer's table in the heatmap statements (the data scope condition uses it)."""
MVT_LAYER = "heatmap"
MVT_EXTENT, MVT_BUFFER = 4096, 64
OUTPUT_CRS = crs_uri(STORAGE_SRID)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""Naive times and bare dates in ``from``/``to`` are China Standard Time (UTC+8)."""
EARTH_RADIUS_M = 6378137.0

Bounds = tuple[float, float, float, float]
IntArray = npt.NDArray[np.int64]


class HeatmapSettings(BaseSettings):
    """Heatmap settings (``CITY_HEATMAP_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="CITY_HEATMAP_", extra="ignore")

    max_fine_points: int = 250_000
    max_age_s: int = 30


@dataclass(frozen=True)
class Tile:
    """A WebMercatorQuad tile address."""

    z: int
    x: int
    y: int

    def bounds(self) -> Bounds:
        """The tile's lon/lat bounds."""
        n = 2.0**self.z

        def lat(row: float) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

        return (self.x / n * 360 - 180, lat(self.y + 1), (self.x + 1) / n * 360 - 180, lat(self.y))

    def search_bounds(self, res: int) -> Bounds:
        """Bounds holding every point of every cell (at ``res``) that touches the tile.

        The tile plus its MVT buffer, grown by a generous cell diameter (four average edges).
        """
        xmin, ymin, xmax, ymax = self.bounds()
        pad_x = (xmax - xmin) * MVT_BUFFER / MVT_EXTENT
        pad_y = (ymax - ymin) * MVT_BUFFER / MVT_EXTENT
        cell_km = 4 * h3.average_hexagon_edge_length(res, unit="km")
        lat_deg = cell_km / 110.574
        coslat = max(math.cos(math.radians(max(abs(ymin), abs(ymax)))), 0.01)
        lon_deg = cell_km / (111.320 * coslat)
        return (
            max(xmin - pad_x - lon_deg, -180.0),
            max(ymin - pad_y - lat_deg, -90.0),
            min(xmax + pad_x + lon_deg, 180.0),
            min(ymax + pad_y + lat_deg, 90.0),
        )


@dataclass(frozen=True)
class HeatmapQuery:
    """A validated heatmap request; ``bbox`` is in the storage CRS (lon/lat)."""

    spec: LayerSpec
    res: int = STORED_RES
    bbox: Bounds | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    scope: DataScope = EVERYTHING


@dataclass(frozen=True)
class Heatmap:
    """Counts per cell (cells ascending, as integers) at one resolution."""

    res: int
    cells: IntArray
    counts: IntArray

    @property
    def total(self) -> int:
        """Points counted."""
        return int(self.counts.sum())

    def as_dict(self) -> dict[str, int]:
        """``{hex cell: count}``."""
        pairs = zip(self.cells.tolist(), self.counts.tolist(), strict=True)
        return {f"{c:x}": int(n) for c, n in pairs}


# --- request validation ------------------------------------------------------------------


def point_layer(registry: LayerRegistry, layer_id: str) -> LayerSpec:
    """The point layer ``layer_id``: 404 when unknown, 422 when not a point layer."""
    spec = registry.find(layer_id)
    if spec is None:
        known = ", ".join(s.id for s in registry if s.is_point)
        raise NotFound(
            f"Unknown layer '{layer_id}'; point layers: {known}",
            [FieldIssue("layer", f"one of {known}")],
        )
    if not spec.is_point:
        raise UnprocessableInput(
            f"Layer '{layer_id}' is not a point layer ({spec.geometry_type}).",
            [FieldIssue("layer", "heatmaps aggregate point layers only")],
        )
    return spec


def check_res(res: int) -> int:
    """The H3 resolution, or 422 naming ``res``."""
    if not MIN_RES <= res <= MAX_RES:
        raise UnprocessableInput(
            f"H3 resolution {res} is not supported.",
            [FieldIssue("res", f"must be within {MIN_RES}–{MAX_RES}")],
        )
    return res


def parse_bbox(text: str, crs_text: str | None = None) -> Bounds:
    """``minLon,minLat,maxLon,maxLat`` in ``bbox-crs`` (default CGCS2000) → storage lon/lat."""
    try:
        crs = parse_client_crs(crs_text or "cgcs2000")
    except ValueError as exc:
        issue = FieldIssue("bbox-crs", str(exc))
        raise InvalidInput(f"Unsupported bbox-crs '{crs_text}'", [issue]) from None
    try:
        values = [float(v) for v in text.split(",")]
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise ValueError("four finite numbers expected")
    except ValueError:
        issue = FieldIssue("bbox", "four numbers minLon,minLat,maxLon,maxLat")
        raise InvalidInput(f"Invalid bbox '{text}'", [issue]) from None
    xmin, ymin, xmax, ymax = values
    if not (-180 <= xmin < xmax <= 180 and -90 <= ymin < ymax <= 90):
        issue = FieldIssue(
            "bbox", "need -180 ≤ minLon < maxLon ≤ 180 and -90 ≤ minLat < maxLat ≤ 90"
        )
        raise InvalidInput(f"Invalid bbox '{text}'", [issue])
    xs, ys = to_storage(np.array([xmin, xmax, xmin, xmax]), np.array([ymin, ymin, ymax, ymax]), crs)
    return (float(np.min(xs)), float(np.min(ys)), float(np.max(xs)), float(np.max(ys)))


def parse_instant(text: str, name: str, *, end: bool) -> datetime:
    """An RFC 3339 time or a date (China time when naive); an ``end`` date covers its day."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tzinfo=LOCAL_TZ)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        issue = FieldIssue(name, "an RFC 3339 time (2026-01-01T08:00:00+08:00) or a date")
        raise InvalidInput(f"Invalid {name} '{text}'", [issue]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def time_window(
    spec: LayerSpec, start: str | None, end: str | None
) -> tuple[datetime | None, datetime | None]:
    """``from`` (inclusive) and ``to`` (exclusive) on the layer's temporal column."""
    given = [(name, v) for name, v in (("from", start), ("to", end)) if v]
    if given and spec.temporal is None:
        raise UnprocessableInput(
            f"Layer '{spec.id}' has no time column to filter on.",
            [FieldIssue(name, "not supported by this layer") for name, _ in given],
        )
    lo = parse_instant(start, "from", end=False) if start else None
    hi = parse_instant(end, "to", end=True) if end else None
    if lo is not None and hi is not None and lo >= hi:
        raise InvalidInput("The time window is empty.", [FieldIssue("from", "must be before `to`")])
    return lo, hi


def check_tile(z: int, x: int, y: int) -> Tile:
    """A WebMercatorQuad tile, or 400 naming the coordinate out of range."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"Zoom {z} is out of range.", [FieldIssue("z", f"0–{MAX_ZOOM}")])
    size = 2**z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < size:
            raise InvalidInput(
                f"{name} {value} is outside zoom {z}.", [FieldIssue(name, f"0–{size - 1}")]
            )
    return Tile(z, x, y)


# --- H3 bit arithmetic ---------------------------------------------------------------------


def parent_masks(res: int) -> tuple[int, int]:
    """``(and_mask, or_mask)``: ``(cell & and_mask) | or_mask`` is the parent at ``res``.

    An H3 cell index holds its resolution in bits 52–55 and fifteen 3-bit digits below the
    7-bit base cell; digits finer than the resolution are 7 (``0b111``). Both masks fit a
    signed 64-bit integer (bit 63 of a cell is always 0).
    """
    low = (1 << (3 * (15 - res))) - 1
    and_mask = ~((0xF << 52) | low)
    return and_mask, (res << 52) | low


def parent_cell(cell: int, res: int) -> int:
    """The parent of ``cell`` at the coarser (or equal) ``res`` by bit arithmetic."""
    and_mask, or_mask = parent_masks(res)
    return (cell & and_mask) | or_mask


def cell_sql(column: sql.Composable, res: int) -> sql.Composable:
    """SQL of the parent at ``res`` of a stored res-9 cell column."""
    if res == STORED_RES:
        return column
    and_mask, or_mask = parent_masks(res)
    return sql.SQL("(({} & {}::bigint) | {}::bigint)").format(
        column, sql.Literal(and_mask), sql.Literal(or_mask)
    )


def cells_of(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], res: int) -> IntArray:
    """H3 cells (integers) of points given as lon and lat arrays."""
    index = h3.api.basic_int.latlng_to_cell
    return np.fromiter(
        (index(y, x, res) for x, y in zip(lon.tolist(), lat.tolist(), strict=True)),
        dtype=np.int64,
        count=len(lon),
    )


# --- SQL -----------------------------------------------------------------------------------


def _col(name: str) -> sql.Composable:
    return sql.Identifier(ALIAS, name)


def _where(q: HeatmapQuery, extra: Sequence[sql.Composable] = ()) -> tuple[sql.Composable, dict]:
    """The WHERE clause (bbox, time window, data scope) and its parameters."""
    spec, parts, params = q.spec, list(extra), {}
    if q.bbox is not None:
        box: sql.Composable = sql.SQL(
            "ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, {})"
        ).format(sql.Literal(STORAGE_SRID))
        if spec.srid != STORAGE_SRID:
            box = sql.SQL("ST_Transform({}, {})").format(box, sql.Literal(spec.srid))
        parts.append(sql.SQL("{} && {}").format(_col(spec.geom), box))
        params |= dict(zip(("xmin", "ymin", "xmax", "ymax"), q.bbox, strict=True))
    if spec.temporal and q.start is not None:
        parts.append(sql.SQL("{} >= %(start)s").format(_col(spec.temporal)))
        params["start"] = q.start
    if spec.temporal and q.end is not None:
        parts.append(sql.SQL("{} < %(end)s").format(_col(spec.temporal)))
        params["end"] = q.end
    if (condition := scope_condition(spec, q.scope, ALIAS)) is not None:
        parts.append(condition)
    where = sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")
    return where, params


def _table(spec: LayerSpec) -> sql.Composable:
    return sql.SQL("{} AS {}").format(
        sql.Identifier(spec.schema, spec.table), sql.Identifier(ALIAS)
    )


def counts_query(q: HeatmapQuery) -> tuple[sql.Composable, dict]:
    """Counts per parent of the stored ``h3`` column (rows with a NULL cell left out).

    The stored cells are grouped first (in index order when nothing filters the rows: an
    index-only scan and a streaming aggregate), then the few res-9 groups are rolled up.
    """
    where, params = _where(q, [sql.SQL("{} IS NOT NULL").format(_col("h3"))])
    query = sql.SQL(
        "SELECT {h3} AS cell, count(*) AS n FROM {table} WHERE {where} GROUP BY 1 ORDER BY 1"
    ).format(h3=_col("h3"), table=_table(q.spec), where=where)
    if q.res < STORED_RES:
        query = sql.SQL(
            "SELECT {parent} AS cell, sum(s.n)::bigint AS n FROM ({query}) AS s GROUP BY 1"
        ).format(parent=cell_sql(sql.Identifier("s", "cell"), q.res), query=query)
    return sql.SQL("SELECT array_agg(t.cell), array_agg(t.n) FROM ({}) AS t").format(query), params


def points_query(
    q: HeatmapQuery, *, null_cells_only: bool, limit: int | None
) -> tuple[sql.Composable, dict]:
    """The points' storage lon and lat as two arrays (at most ``limit`` points)."""
    extra = [sql.SQL("{} IS NULL").format(_col("h3"))] if null_cells_only else []
    where, params = _where(q, extra)
    geom: sql.Composable = sql.Identifier("s", "g")
    if q.spec.srid != STORAGE_SRID:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(STORAGE_SRID))
    cap = sql.SQL("") if limit is None else sql.SQL(" LIMIT {}").format(sql.Literal(limit))
    query = sql.SQL(
        "SELECT array_agg(ST_X({geom})), array_agg(ST_Y({geom})) FROM ("
        "SELECT {column} AS g FROM {table} WHERE {where}{cap}) AS s"
    ).format(geom=geom, column=_col(q.spec.geom), table=_table(q.spec), where=where, cap=cap)
    return query, params


HAS_H3_QUERY = (
    "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
    "WHERE table_schema = %s AND table_name = %s AND column_name = 'h3')"
)

VERSIONS_QUERY = "SELECT layer, version FROM city.layer_versions WHERE layer = ANY(%s)"

MVT_QUERY = sql.SQL(
    "SELECT ST_AsMVT(t.*, {name}, {extent}, 'geom') FROM ("
    "SELECT ST_AsMVTGeom(ST_SetSRID(ST_GeomFromWKB(u.w), 3857), ST_TileEnvelope(%s, %s, %s), "
    "{extent}, {buffer}, true) AS geom, u.h3, u.count, %s::integer AS res "
    "FROM unnest(%s::bytea[], %s::text[], %s::bigint[]) AS u(w, h3, count)) AS t "
    "WHERE t.geom IS NOT NULL"
).format(
    name=sql.Literal(MVT_LAYER), extent=sql.Literal(MVT_EXTENT), buffer=sql.Literal(MVT_BUFFER)
)


async def _arrays(
    conn: psycopg.AsyncConnection, query: tuple[sql.Composable, dict]
) -> tuple[list[Any], list[Any]]:
    row = await (await conn.execute(query[0], query[1], binary=True)).fetchone()
    if row is None or row[0] is None:
        return [], []
    return row[0], row[1]


async def has_h3(conn: psycopg.AsyncConnection, spec: LayerSpec) -> bool:
    """True when the layer's table has the stored ``h3`` column."""
    row = await (await conn.execute(HAS_H3_QUERY, (spec.schema, spec.table))).fetchone()
    return bool(row and row[0])


async def aggregate(
    conn: psycopg.AsyncConnection,
    q: HeatmapQuery,
    *,
    stored: bool = True,
    max_fine_points: int = 250_000,
) -> Heatmap:
    """Count the layer's points per H3 cell at ``q.res`` (``stored``: the table has ``h3``)."""
    parts: list[tuple[IntArray, IntArray]] = []
    if stored and q.res <= STORED_RES:
        cells, counts = await _arrays(conn, counts_query(q))
        parts.append((np.asarray(cells, dtype=np.int64), np.asarray(counts, dtype=np.int64)))
        lon, lat = await _arrays(conn, points_query(q, null_cells_only=True, limit=None))
    else:
        lon, lat = await _arrays(
            conn, points_query(q, null_cells_only=False, limit=max_fine_points + 1)
        )
        if len(lon) > max_fine_points:
            raise UnprocessableInput(
                f"More than {max_fine_points} points to index at resolution {q.res}.",
                [FieldIssue("res", f"narrow bbox/from/to, or use res ≤ {STORED_RES}")],
            )
    if lon:
        found = cells_of(np.asarray(lon), np.asarray(lat), max(q.res, STORED_RES))
        if q.res < STORED_RES:  # the parent of the res-9 cell, as the stored path counts
            and_mask, or_mask = parent_masks(q.res)
            found = (found & np.int64(and_mask)) | np.int64(or_mask)
        parts.append((found, np.ones(len(found), dtype=np.int64)))
    return merge(q.res, parts)


def merge(res: int, parts: Sequence[tuple[IntArray, IntArray]]) -> Heatmap:
    """Add up (cells, counts) pairs into one heatmap with ascending cells."""
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Heatmap(res, empty, empty)
    if len(parts) == 1 and parts[0][0].size == np.unique(parts[0][0]).size:
        order = np.argsort(parts[0][0])
        return Heatmap(res, parts[0][0][order], parts[0][1][order])
    cells = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    unique, inverse = np.unique(cells, return_inverse=True)
    return Heatmap(res, unique, np.bincount(inverse, weights=counts).astype(np.int64))


def touching(heatmap: Heatmap, bounds: Bounds) -> Heatmap:
    """The cells whose hexagon's bounding box meets ``bounds`` (lon/lat)."""
    xmin, ymin, xmax, ymax = bounds
    keep = np.zeros(heatmap.cells.size, dtype=bool)
    for i, cell in enumerate(heatmap.cells.tolist()):
        xs, ys = zip(*cell_ring(cell), strict=True)
        keep[i] = min(xs) <= xmax and max(xs) >= xmin and min(ys) <= ymax and max(ys) >= ymin
    if keep.size == 0:
        return heatmap
    return Heatmap(heatmap.res, heatmap.cells[keep], heatmap.counts[keep])


# --- output --------------------------------------------------------------------------------


def cell_ring(cell: int) -> list[tuple[float, float]]:
    """The closed boundary of a cell, lon/lat order, rounded to 1e-6° (about 0.1 m)."""
    ring = [(round(x, 6), round(y, 6)) for y, x in h3.api.basic_int.cell_to_boundary(cell)]
    ring.append(ring[0])
    return ring


@functools.lru_cache(maxsize=100_000)
def _feature_head(cell: int, res: int) -> str:
    """A cell's GeoJSON Feature text up to its count (hexagons never change: cached)."""
    ring = h3.api.basic_int.cell_to_boundary(cell)
    coords = ",".join("[%.6f,%.6f]" % (x, y) for y, x in (*ring, ring[0]))  # noqa: UP031
    geometry = f'{{"type":"Polygon","coordinates":[[{coords}]]}}'
    return _head(cell, res, geometry)


def _head(cell: int, res: int, geometry: str) -> str:
    return (
        f'{{"type":"Feature","id":"{cell:x}","geometry":{geometry},'
        f'"properties":{{"h3":"{cell:x}","res":{res},"count":'
    )


def geojson(heatmap: Heatmap, meta: dict[str, Any], *, geometry: bool = True) -> bytes:
    """A FeatureCollection of hexagons with ``h3`` (hex), ``count`` and ``res``.

    Built as text from cached per-cell fragments: a res-9 map of a district has ~50k cells.
    """
    res = heatmap.res
    pairs = zip(heatmap.cells.tolist(), heatmap.counts.tolist(), strict=True)
    if geometry:
        features = [f"{_feature_head(c, res)}{n}}}}}" for c, n in pairs]
    else:
        features = [f"{_head(c, res, 'null')}{n}}}}}" for c, n in pairs]
    head = {
        "type": "FeatureCollection",
        **meta,
        "crs": OUTPUT_CRS,
        "res": res,
        "total": heatmap.total,
        "cells": len(features),
    }
    return b"".join((orjson.dumps(head)[:-1], b',"features":[', ",".join(features).encode(), b"]}"))


def mercator_wkb(cells: Sequence[int]) -> list[bytes]:
    """The cells' hexagons in Web Mercator (EPSG:3857) as WKB."""
    rings = [cell_ring(c) for c in cells]
    coords = np.array([p for ring in rings for p in ring], dtype=np.float64)
    lat = np.clip(coords[:, 1], -85.05112878, 85.05112878)
    x = np.radians(coords[:, 0]) * EARTH_RADIUS_M
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS_M
    ring_offsets = np.concatenate([[0], np.cumsum([len(r) for r in rings])])
    polygons = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.column_stack([x, y]),
        (ring_offsets, np.arange(len(rings) + 1)),
    )
    return [bytes(w) for w in shapely.to_wkb(polygons)]


async def render_mvt(conn: psycopg.AsyncConnection, heatmap: Heatmap, tile: Tile) -> bytes:
    """The heatmap's cells touching ``tile`` as an MVT layer ``heatmap`` (``ST_AsMVT``)."""
    if heatmap.cells.size == 0:
        return b""
    cells = heatmap.cells.tolist()
    params = (
        tile.z,
        tile.x,
        tile.y,
        heatmap.res,
        mercator_wkb(cells),
        [f"{c:x}" for c in cells],
        heatmap.counts.tolist(),
    )
    row = await (await conn.execute(MVT_QUERY, params, binary=True)).fetchone()
    return bytes(row[0] or b"") if row else b""


async def versions(conn: psycopg.AsyncConnection, tables: Sequence[str]) -> dict[str, int]:
    """Change versions (``city.layer_versions``) of ``tables``; untracked ones are absent."""
    rows = await (await conn.execute(VERSIONS_QUERY, (list(tables),))).fetchall()
    return {layer: int(version) for layer, version in rows}
