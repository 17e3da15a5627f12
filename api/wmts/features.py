"""Fetch a registry layer's features inside one tile from PostGIS, ready to rasterize.

The filter is ``&&`` against the tile envelope transformed to the layer's SRID (so the GiST
index applies); the output is transformed to the tile matrix set's CRS, clipped to the tile
plus a margin and simplified to the pixel size; points are snapped to the pixel grid and
de-duplicated. Identifiers come from the registry only, quoted with ``psycopg.sql``. A scoped
layer (案卷) drawn for a restricted data scope (数据范围) carries the scope's condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from layers.registry import LayerSpec
from spatial.security.principal import EVERYTHING, DataScope
from spatial.security.scope import scope_condition

MAX_FEATURES = 200_000
MARGIN_PX = 4


@dataclass(frozen=True)
class TileWindow:
    """A tile's bounds in its CRS (x/y order), that CRS's EPSG code and the pixel size."""

    left: float
    bottom: float
    right: float
    top: float
    epsg: int
    size: int = 256

    @property
    def pixel(self) -> float:
        """Width of one pixel in CRS units."""
        return (self.right - self.left) / self.size

    def expanded(self, pixels: int = MARGIN_PX) -> tuple[float, float, float, float]:
        """The bounds grown by ``pixels`` on every side."""
        m = self.pixel * pixels
        return (self.left - m, self.bottom - m, self.right + m, self.top + m)


def features_sql(spec: LayerSpec, epsg: int, scope: DataScope = EVERYTHING) -> sql.Composed:
    """``SELECT`` the WKB of ``spec``'s features in a window (parameters x0, y0, x1, y1, px, n).

    Points are snapped to the pixel grid in the layer's own CRS and de-duplicated before they
    are transformed, so a low-zoom tile over many points transforms at most one per pixel.
    Only the rows ``scope`` sees are drawn.
    """
    geom = sql.SQL("t.{}").format(sql.Identifier(spec.geom))
    envelope = sql.SQL("ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, {})").format(
        sql.Literal(epsg)
    )
    same_crs = spec.srid == epsg
    search = (
        envelope
        if same_crs
        else sql.SQL("ST_Transform({}, {})").format(envelope, sql.Literal(spec.srid))
    )

    def to_tms(g: sql.Composable) -> sql.Composable:
        return g if same_crs else sql.SQL("ST_Transform({}, {})").format(g, sql.Literal(epsg))

    table = sql.SQL("{}.{} AS t").format(sql.Identifier(spec.schema), sql.Identifier(spec.table))
    scoped = scope_condition(spec, scope, "t")
    within = sql.SQL("") if scoped is None else sql.SQL(" AND {}").format(scoped)
    if spec.is_point:
        inner = sql.SQL(
            "SELECT DISTINCT ST_SnapToGrid({}, (ST_XMax(w.env) - ST_XMin(w.env)) / %(n)s) AS g "
            "FROM {}, w WHERE {} && w.env{}"
        ).format(geom, table, geom, within)
        outer = to_tms(sql.SQL("s.g"))
    else:
        inner = sql.SQL(
            "SELECT ST_Simplify(ST_ClipByBox2D({}, {}), %(px)s / 2, true) AS g "
            "FROM {}, w WHERE {} && w.env{}"
        ).format(to_tms(geom), envelope, table, geom, within)
        outer = sql.SQL("s.g")
    return sql.SQL(
        "WITH w AS (SELECT {} AS env) SELECT ST_AsBinary({}) FROM ({}) AS s "
        "WHERE s.g IS NOT NULL AND NOT ST_IsEmpty(s.g) LIMIT {}"
    ).format(search, outer, inner, sql.Literal(MAX_FEATURES))


async def fetch_tile_features(
    conn: psycopg.AsyncConnection,
    spec: LayerSpec,
    window: TileWindow,
    scope: DataScope = EVERYTHING,
) -> list[bytes]:
    """The WKB geometries of ``spec`` in ``window`` (plus a margin, within ``scope``)."""
    x0, y0, x1, y1 = window.expanded()
    n = window.size + 2 * MARGIN_PX
    params = {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "px": window.pixel, "n": n}
    async with conn.transaction():
        # JIT compiling costs more than these short, index-driven queries take to run.
        await conn.execute("SET LOCAL jit = off")
        cur = await conn.execute(features_sql(spec, window.epsg, scope), params)
        return [bytes(row[0]) for row in await cur.fetchall()]
