"""The tile SQL and tile grids, run directly on the sample database (no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from layers.registry import LayerSpec, TileSpec
from spatial.tiles_sql import mvt_params, mvt_query
from spatial.tms import TileGrid, tile_grids
from tests.tiles_support import GRID_IDS, GRIDS, LAYERS, data_tile, decode, vertices

POLYGON_LAYERS = [s for s in LAYERS if s.id in ("districts", "communities", "buildings")]


@pytest.fixture(scope="module")
def conn(psql_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(psql_url, autocommit=True) as connection:
        yield connection


def _render(conn: psycopg.Connection, spec: LayerSpec, grid: TileGrid, tile, **override) -> bytes:
    query = mvt_query(spec, grid, [spec.pk], limit=50_000)
    params = mvt_params(spec, grid, tile.z, tile.x, tile.y) | override
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return bytes(row[1] or b"")


def _vertex_count(data: bytes, layer: str) -> int:
    return sum(vertices(f["geometry"]["coordinates"]) for f in decode(data)[layer]["features"])


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
@pytest.mark.parametrize("spec", POLYGON_LAYERS, ids=lambda s: s.id)
def test_simplification_reduces_vertices_at_low_zoom(
    conn: psycopg.Connection, psql_url: str, spec: LayerSpec, grid: TileGrid
) -> None:
    tile = data_tile(psql_url, spec, grid, step=0)
    simplified = _vertex_count(_render(conn, spec, grid, tile), spec.id)
    full = _vertex_count(_render(conn, spec, grid, tile, tolerance=0.0), spec.id)
    assert 0 < simplified < full


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
def test_tolerance_is_about_a_pixel_and_halves_per_zoom(grid: TileGrid) -> None:
    spec = POLYGON_LAYERS[0]
    t14 = mvt_params(spec, grid, 14, 100, 100)
    t15 = mvt_params(spec, grid, 15, 200, 200)
    assert t15["tolerance"] == pytest.approx(t14["tolerance"] / 2)
    assert t14["tolerance"] == pytest.approx((t14["xmax"] - t14["xmin"]) / 512)


def test_points_are_not_simplified() -> None:
    spec = next(s for s in LAYERS if s.id == "parts")
    query = mvt_query(spec, tile_grids()["WebMercatorQuad"], ["code"], limit=10)
    assert "ST_Simplify" not in repr(query) and "ST_Transform" in repr(query)


def test_geographic_tiles_are_cut_without_transform() -> None:
    spec = next(s for s in LAYERS if s.id == "streets")
    query = repr(mvt_query(spec, tile_grids()["CGCS2000Quad"], ["code"], limit=10))
    assert "ST_Transform" not in query and "4490" in query


@pytest.mark.parametrize(("z", "col", "row"), [(0, 1, 0), (14, 27350, 5170), (19, 875000, 165400)])
def test_cgcs2000_quad_bounds_match_the_definition(z: int, col: int, row: int) -> None:
    size = 180.0 / 2**z
    west, north = -180.0 + col * size, 90.0 - row * size
    bounds = tile_grids()["CGCS2000Quad"].bounds(z, col, row)
    assert bounds == pytest.approx((west, north - size, west + size, north))


@pytest.mark.parametrize(
    ("tms_id", "expected"), [("WebMercatorQuad", range(13, 21)), ("CGCS2000Quad", range(12, 20))]
)
def test_zoom_range_follows_tile_spec(tms_id: str, expected: range) -> None:
    assert tile_grids()[tms_id].zoom_range(TileSpec(minzoom=13, maxzoom=20)) == expected
