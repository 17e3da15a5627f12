"""SQL for WFS GetFeature: BBOX and paging in PostGIS, GML/GeoJSON geometry from PostGIS.

A scoped layer (案卷) is limited to the caller's data scope (数据范围) in the same WHERE, so
pages and ``numberMatched`` (``resultType=hits``) both honour it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from api.wfs.params import Bbox, Srs
from layers.registry import LayerSpec
from spatial.security.principal import EVERYTHING, DataScope
from spatial.security.scope import scope_condition

COUNT_CAP = 100_000
ALIAS = "f"  # the layer's table, for the data scope condition
COLUMNS_SQL = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s AND column_name <> %s
ORDER BY ordinal_position
"""


@dataclass(frozen=True)
class Column:
    """A non-geometry column of a layer table."""

    name: str
    data_type: str


async def layer_columns(conn: psycopg.AsyncConnection, spec: LayerSpec) -> list[Column]:
    """Columns of the layer table, in table order (identifiers come from the catalogue)."""
    cur = await conn.execute(COLUMNS_SQL, (spec.schema, spec.table, spec.geom))
    return [Column(name, dtype) for name, dtype in await cur.fetchall()]


def _table(spec: LayerSpec) -> sql.Composable:
    return sql.SQL("{} AS {}").format(
        sql.Identifier(spec.schema, spec.table), sql.Identifier(ALIAS)
    )


def _where(
    spec: LayerSpec, bbox: Bbox | None, scope: DataScope = EVERYTHING
) -> tuple[sql.Composable, list[object]]:
    cond, params = _bbox_where(spec, bbox)
    scoped = scope_condition(spec, scope, ALIAS)
    if scoped is not None:
        cond = sql.SQL("{} AND {}").format(scoped, cond)
    return cond, params


def _bbox_where(spec: LayerSpec, bbox: Bbox | None) -> tuple[sql.Composable, list[object]]:
    if bbox is None:
        return sql.SQL("TRUE"), []
    envelope = sql.SQL("ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, %s), {srid})").format(
        srid=sql.Literal(spec.srid)
    )
    cond = sql.SQL("{geom} && {env} AND ST_Intersects({geom}, {env})").format(
        geom=sql.Identifier(spec.geom), env=envelope
    )
    box = [bbox.minx, bbox.miny, bbox.maxx, bbox.maxy, bbox.srid]
    return cond, box + box


def _geometry(spec: LayerSpec, srs: Srs, fmt: str) -> sql.Composable:
    out = sql.SQL("ST_Transform({g}, {s})").format(
        g=sql.Identifier(spec.geom), s=sql.Literal(srs.srid)
    )
    if fmt == "geojson":
        return sql.SQL("ST_AsGeoJSON({out}, 8)").format(out=out)
    options = 1 | (16 if srs.lat_first else 0)  # long srsName URN; lat/lon axis order
    return sql.SQL("ST_AsGML(3, {out}, 8, {opt}, 'gml', 'g.' || {pk}::text)").format(
        out=out, opt=sql.Literal(options), pk=sql.Identifier(spec.pk)
    )


def features_sql(
    spec: LayerSpec,
    columns: list[Column],
    bbox: Bbox | None,
    srs: Srs,
    fmt: str,
    count: int,
    start: int,
    scope: DataScope = EVERYTHING,
) -> tuple[sql.Composed, list[object]]:
    """One page of features: id, properties as text, and the encoded geometry."""
    where, params = _where(spec, bbox, scope)
    props = sql.SQL(", ").join(
        sql.SQL("to_json({c}) #>> '{{}}'").format(c=sql.Identifier(c.name)) for c in columns
    )
    query = sql.SQL(
        "SELECT {pk}::text, {props}, {geom} FROM {table} WHERE {where} "
        "ORDER BY {pk} LIMIT %s OFFSET %s"
    ).format(
        pk=sql.Identifier(spec.pk),
        props=props,
        geom=_geometry(spec, srs, fmt),
        table=_table(spec),
        where=where,
    )
    return query, [*params, count, start]


def count_sql(
    spec: LayerSpec, bbox: Bbox | None, scope: DataScope = EVERYTHING
) -> tuple[sql.Composed, list[object]]:
    """A count capped at ``COUNT_CAP`` + 1 (beyond that the answer is ``unknown``)."""
    where, params = _where(spec, bbox, scope)
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {w} LIMIT %s) s").format(
        t=_table(spec), w=where
    )
    return query, [*params, COUNT_CAP + 1]


async def number_matched(
    conn: psycopg.AsyncConnection,
    spec: LayerSpec,
    bbox: Bbox | None,
    scope: DataScope = EVERYTHING,
) -> int | None:
    """Matched features (within ``scope``), or None when more than ``COUNT_CAP``."""
    query, params = count_sql(spec, bbox, scope)
    total = (await (await conn.execute(query, params)).fetchone())[0]
    return None if total > COUNT_CAP else int(total)


async def extent(conn: psycopg.AsyncConnection, spec: LayerSpec) -> tuple[float, ...]:
    """The layer's lon/lat extent from the planner statistics (fallback: exact)."""
    query = sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT coalesce(ST_EstimatedExtent(%s, %s, %s)::geometry, "
        "(SELECT ST_Extent({g}) FROM {t})::geometry) AS e) s"
    ).format(g=sql.Identifier(spec.geom), t=sql.Identifier(spec.schema, spec.table))
    row = await (await conn.execute(query, (spec.schema, spec.table, spec.geom))).fetchone()
    if row is None or row[0] is None:
        return (120.43, 33.16, 120.53, 33.24)
    return tuple(float(v) for v in row)
