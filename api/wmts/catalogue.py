"""The WMTS layers: the built basemaps and every registry layer, with their extents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
import rasterio
from psycopg import sql

from layers.basemaps import BASEMAPS, BasemapSpec
from layers.registry import LayerSpec

Bounds = tuple[float, float, float, float]
# The sample district's lattice (data_samples/geography.py): used for layers with no rows yet.
DAFENG_BOUNDS: Bounds = (120.43, 33.16, 120.53, 33.24)


@dataclass(frozen=True)
class WmtsLayer:
    """One WMTS layer: a basemap COG or a registry layer rendered to PNG."""

    id: str
    title: str
    abstract: str
    kind: Literal["basemap", "vector"]
    bounds: Bounds
    keywords: tuple[str, ...] = ()


def basemap_bounds(path: Path) -> Bounds:
    """Longitude/latitude bounds of a basemap COG (EPSG:4490)."""
    with rasterio.open(path) as src:
        b = src.bounds
    return (b.left, b.bottom, b.right, b.top)


def basemap_layers(directory: Path, specs: tuple[BasemapSpec, ...] = BASEMAPS) -> list[WmtsLayer]:
    """The basemaps whose COG exists in ``directory``."""
    return [
        WmtsLayer(
            spec.id,
            spec.title,
            spec.description,
            "basemap",
            basemap_bounds(spec.path(directory)),
            ("basemap", "底图", spec.style),
        )
        for spec in specs
        if spec.path(directory).is_file()
    ]


def _extent_sql(spec: LayerSpec) -> sql.Composed:
    extent = sql.SQL("ST_SetSRID(ST_Extent({})::geometry, {})").format(
        sql.Identifier(spec.geom), sql.Literal(spec.srid)
    )
    if spec.srid != 4490:
        extent = sql.SQL("ST_Transform({}, 4490)").format(extent)
    return sql.SQL(
        "SELECT {}, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT {} AS e FROM {}.{}) AS x"
    ).format(
        sql.Literal(spec.id),
        extent,
        sql.Identifier(spec.schema),
        sql.Identifier(spec.table),
    )


async def layer_extents(
    conn: psycopg.AsyncConnection, specs: Iterable[LayerSpec]
) -> dict[str, Bounds | None]:
    """Each layer's lon/lat extent (``None`` when empty), in one round trip."""
    parts = [_extent_sql(spec) for spec in specs]
    if not parts:
        return {}
    query = sql.SQL(" UNION ALL ").join(parts)
    rows = await (await conn.execute(query)).fetchall()
    return {r[0]: None if r[1] is None else (r[1], r[2], r[3], r[4]) for r in rows}


def vector_layers(specs: Iterable[LayerSpec], extents: dict[str, Bounds | None]) -> list[WmtsLayer]:
    """Each layer (a registry, or the readable part of it) as a PNG-rendered WMTS layer."""
    return [
        WmtsLayer(
            spec.id,
            spec.title,
            spec.description or f"{spec.title}: {spec.qualified_table} rendered to PNG.",
            "vector",
            extents.get(spec.id) or DAFENG_BOUNDS,
            ("/".join(spec.tree), *spec.keywords) if spec.tree else spec.keywords,
        )
        for spec in specs
    ]
