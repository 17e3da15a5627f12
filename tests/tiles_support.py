"""Helpers for the vector tile tests (imported by tests/test_tiles_*)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import morecantile
import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from layers.base import default_registry
from layers.registry import LayerSpec
from spatial.settings import DatabaseSettings, Settings
from spatial.tms import TileGrid, tile_grids

PROBLEM = "application/problem+json"
MVT = "application/vnd.mapbox-vector-tile"
LAYERS = list(default_registry())
GRIDS = list(tile_grids().values())
GRID_IDS = [g.id for g in GRIDS]


def open_client(db_url: str, headers: dict[str, str] | None = None) -> Iterator[TestClient]:
    """Body of a client fixture over a fresh app (its lifespan runs the tile service).

    ``headers`` are sent with every request (e.g. ``security_support.basic("acceptor")``).
    """
    settings = Settings(db=DatabaseSettings(url=db_url))
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False, headers=headers) as client:
        yield client


def decode(data: bytes) -> dict[str, Any]:
    """Decode an MVT with tile coordinates as stored (y down, 0–4096)."""
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def fetch(url: str, query: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of a query on the sample database."""
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def expected_properties(psql_url: str, spec: LayerSpec) -> list[str]:
    """The tile properties by the documented rule, derived independently of the service."""
    rows = fetch(
        psql_url,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        spec.schema,
        spec.table,
    )
    columns = {r[0] for r in rows}
    wanted = spec.tiles.properties or (spec.pk, "name", *spec.queryables)
    return [c for c in dict.fromkeys(wanted) if c in columns]


def data_tile(psql_url: str, spec: LayerSpec, grid: TileGrid, step: int = 2) -> morecantile.Tile:
    """A tile ``step`` levels above the layer's first level holding a point of its first row."""
    (lon, lat), *_ = fetch(
        psql_url,
        f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface({spec.geom}) AS p "
        f"FROM {spec.qualified_table} ORDER BY {spec.pk} LIMIT 1) AS s",
    )
    return grid.tms.tile(lon, lat, grid.zoom_range(spec.tiles).start + step)


def ogc_tile_path(spec: LayerSpec, grid: TileGrid, tile: morecantile.Tile) -> str:
    """The OGC API – Tiles path of a tile (row = y, column = x)."""
    return f"/ogc/collections/{spec.id}/tiles/{grid.id}/{tile.z}/{tile.y}/{tile.x}"


def envelope_sql(grid: TileGrid, tile: morecantile.Tile) -> str:
    """The tile's envelope in EPSG:4490, computed by PostGIS / by hand (not by the server)."""
    if grid.srid == 3857:
        return f"ST_Transform(ST_TileEnvelope({tile.z}, {tile.x}, {tile.y}), 4490)"
    size = 180.0 / 2**tile.z
    west, north = -180.0 + tile.x * size, 90.0 - tile.y * size
    return f"ST_MakeEnvelope({west}, {north - size}, {west + size}, {north}, 4490)"


def vertices(coordinates: Any) -> int:
    """Number of vertices in nested GeoJSON-like coordinates."""
    if isinstance(coordinates[0], int | float):
        return 1
    return sum(vertices(c) for c in coordinates)
