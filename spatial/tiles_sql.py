"""SQL of the vector tiles: one ``ST_AsMVT`` statement per (layer, tile grid), built from the spec.

Identifiers come from the ``LayerSpec`` (quoted with ``psycopg.sql``); the tile bounds, the
simplification tolerance, the feature cap and the names are bound parameters. The shape is
tipg's — filter with ``geom && envelope`` in the storage SRID (GiST), then
``ST_AsMVTGeom(ST_Transform(geom, <integer srid>), envelope, 4096, 64, true)`` — plus:

- the feature cap is a literal ``LIMIT`` on an inner select of plain columns (a bound LIMIT, or
  one on the expensive ``ST_AsMVTGeom`` projection, made the planner pick a sequential scan);
- lines and polygons are simplified with ``ST_Simplify(…, tolerance, true)`` where the tolerance is
  ``tile width / 512`` (one pixel of a 512-px rendered tile); collapsed rings are kept;
- geographic tiles (EPSG:4490) are cut from the stored geometry directly, no transform;
- the layer's version (``city.layer_versions``) is read in the same statement, so a cached tile
  is keyed by the version of the very snapshot it was rendered from;
- a scoped layer (案卷) rendered for a restricted data scope (数据范围) carries the scope's
  condition on the table, aliased ``SCOPE_ALIAS`` (see ``spatial.security.scope``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql

from layers.registry import LayerSpec
from spatial.models.base import SCHEMA
from spatial.tms import Bounds, TileGrid

EXTENT = 4096
BUFFER = 64
SIMPLIFY_FRACTION = 1 / 512
SCOPE_ALIAS = "f"
"""Alias of the layer's table in a scoped tile statement (the data scope condition uses it)."""

_VERSION = sql.SQL("(SELECT version FROM {} WHERE layer = %(layer)s)").format(
    sql.Identifier(SCHEMA, "layer_versions")
)


def _table(spec: LayerSpec) -> sql.Composable:
    return sql.Identifier(spec.schema, spec.table)


def _envelope(prefix: str, srid: int) -> sql.Composable:
    names = [sql.Placeholder(f"{prefix}{n}") for n in ("xmin", "ymin", "xmax", "ymax")]
    return sql.SQL("ST_MakeEnvelope({}, {})").format(sql.SQL(", ").join(names), sql.Literal(srid))


def mvt_query(
    spec: LayerSpec,
    grid: TileGrid,
    properties: Sequence[str],
    limit: int,
    where: sql.Composable | None = None,
) -> sql.Composed:
    """The tile statement: returns ``(layer version, mvt bytes)`` for the bound tile.

    ``where``: an extra condition on the table aliased ``SCOPE_ALIAS`` (the data scope).
    """
    geom: sql.Composable = sql.SQL("s.{}").format(sql.Identifier(spec.geom))
    if grid.srid != spec.srid:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(grid.srid))
    if not spec.is_point:
        geom = sql.SQL("ST_Simplify({}, %(tolerance)s, true)").format(geom)
    search = _envelope("m", grid.srid)
    if grid.srid != spec.srid:
        search = sql.SQL("ST_Transform({}, {})").format(search, sql.Literal(spec.srid))
    columns = sql.SQL("").join(
        sql.SQL(", {}").format(sql.Identifier(c)) for c in properties if c != spec.geom
    )
    return sql.SQL(
        "SELECT {version}, (SELECT ST_AsMVT(t.*, %(name)s, {extent}, 'geom') FROM ("
        "SELECT ST_AsMVTGeom({geom}, {envelope}, {extent}, {buffer}, true) AS geom{columns} "
        "FROM (SELECT {column}{columns} FROM {table} WHERE {column} && {search}{where} "
        "LIMIT {limit}) AS s) AS t)"
    ).format(
        version=_VERSION,
        extent=sql.Literal(EXTENT),
        geom=geom,
        envelope=_envelope("", grid.srid),
        buffer=sql.Literal(BUFFER),
        columns=columns,
        table=_table(spec)
        if where is None
        else sql.SQL("{} AS {}").format(_table(spec), sql.Identifier(SCOPE_ALIAS)),
        column=sql.Identifier(spec.geom),
        search=search,
        where=sql.SQL("") if where is None else sql.SQL(" AND {}").format(where),
        limit=sql.Literal(limit),
    )


def mvt_params(spec: LayerSpec, grid: TileGrid, z: int, col: int, row: int) -> dict[str, object]:
    """Bound parameters of :func:`mvt_query` for one tile."""
    inner = grid.bounds(z, col, row)
    outer = grid.bounds(z, col, row, margin=BUFFER / EXTENT)
    params: dict[str, object] = {"layer": spec.table, "name": spec.id}
    params |= _named("", inner) | _named("m", outer)
    params["tolerance"] = (inner[2] - inner[0]) * SIMPLIFY_FRACTION
    return params


def _named(prefix: str, bounds: Bounds) -> Mapping[str, float]:
    return dict(
        zip((f"{prefix}{n}" for n in ("xmin", "ymin", "xmax", "ymax")), bounds, strict=True)
    )


def extent_query(spec: LayerSpec) -> sql.Composed:
    """``(layer version, xmin, ymin, xmax, ymax)`` of the whole layer, in its storage CRS."""
    return sql.SQL(
        "SELECT {version}, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        "FROM (SELECT ST_Extent({column}) AS e FROM {table}) AS s"
    ).format(version=_VERSION, column=sql.Identifier(spec.geom), table=_table(spec))


COLUMNS_QUERY = (
    "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY ordinal_position"
)

VERSIONS_QUERY = sql.SQL("SELECT layer, version FROM {}").format(
    sql.Identifier(SCHEMA, "layer_versions")
)

WARM_UP_QUERY = (
    "SELECT ST_Transform(ST_Transform(ST_SetSRID(ST_Point(120.48, 33.2), 4490), 3857), 4490)"
)
