"""OGC API – Tiles and XYZ vector tiles over the small sample: tiles, documents, errors."""

from __future__ import annotations

from collections.abc import Iterator

import morecantile
import pytest
from fastapi.testclient import TestClient

from layers.registry import LayerSpec
from spatial.tms import TileGrid, tile_grids
from tests.security_support import basic
from tests.tiles_support import (
    GRID_IDS,
    GRIDS,
    LAYERS,
    MVT,
    PROBLEM,
    data_tile,
    decode,
    envelope_sql,
    expected_properties,
    fetch,
    ogc_tile_path,
    open_client,
)

# ``alarms`` is filled by the running system only (tests/test_alarms.py covers it).
LAYERS_WITH_DATA = [s for s in LAYERS if s.id != "alarms"]
POINT_LAYERS = [s for s in LAYERS_WITH_DATA if s.is_point]
WMQ = tile_grids()["WebMercatorQuad"]


@pytest.fixture(scope="module")
def tiles_client(db_url: str) -> Iterator[TestClient]:
    yield from open_client(db_url, basic("shiftlead"))  # reads every layer, scope: all


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
@pytest.mark.parametrize("spec", LAYERS_WITH_DATA, ids=lambda s: s.id)
def test_every_layer_serves_a_decodable_tile(
    tiles_client: TestClient, psql_url: str, spec: LayerSpec, grid: TileGrid
) -> None:
    r = tiles_client.get(ogc_tile_path(spec, grid, data_tile(psql_url, spec, grid)))
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    layers = decode(r.content)
    assert list(layers) == [spec.id] and layers[spec.id]["extent"] == 4096
    features = layers[spec.id]["features"]
    expected = expected_properties(psql_url, spec)
    assert features and all(set(f["properties"]) <= set(expected) for f in features)
    assert all(spec.pk in f["properties"] for f in features)


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
@pytest.mark.parametrize("spec", POINT_LAYERS, ids=lambda s: s.id)
def test_point_tile_matches_postgis_count(
    tiles_client: TestClient, psql_url: str, spec: LayerSpec, grid: TileGrid
) -> None:
    tile = data_tile(psql_url, spec, grid, step=3)
    features = decode(tiles_client.get(ogc_tile_path(spec, grid, tile)).content)[spec.id][
        "features"
    ]
    inside = [f for f in features if all(0 <= v < 4096 for v in f["geometry"]["coordinates"])]
    [(count,)] = fetch(
        psql_url,
        f"SELECT count(*) FROM {spec.qualified_table} "
        f"WHERE ST_Intersects({spec.geom}, {envelope_sql(grid, tile)})",
    )
    assert count > 0 and len(inside) == count
    assert len(features) >= count  # plus neighbours inside the 64-unit buffer


def test_xyz_tile_equals_ogc_tile(tiles_client: TestClient, psql_url: str) -> None:
    spec = LAYERS_WITH_DATA[-1]
    tile = data_tile(psql_url, spec, WMQ)
    xyz = tiles_client.get(f"/tiles/{spec.id}/{tile.z}/{tile.x}/{tile.y}.mvt")
    ogc = tiles_client.get(ogc_tile_path(spec, WMQ, tile))
    assert xyz.status_code == 200 and xyz.content == ogc.content
    assert xyz.headers["etag"] == ogc.headers["etag"]


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
def test_empty_tile_inside_limits_is_204(
    tiles_client: TestClient, psql_url: str, grid: TileGrid
) -> None:
    spec = next(s for s in LAYERS if s.id == "pois")
    doc = tiles_client.get(f"/ogc/collections/pois/tiles/{grid.id}").json()
    limit = doc["tileMatrixSetLimits"][-1]
    z = int(limit["tileMatrix"])
    for row in range(limit["minTileRow"], limit["maxTileRow"] + 1):
        tile = morecantile.Tile(x=limit["minTileCol"], y=row, z=z)
        margin = f"ST_Buffer({envelope_sql(grid, tile)}, 0.001)"
        [(count,)] = fetch(psql_url, f"SELECT count(*) FROM city.pois WHERE geom && {margin}")
        if count == 0:
            break
    else:
        pytest.fail("no empty tile in the first column of the limits")
    r = tiles_client.get(ogc_tile_path(spec, grid, tile))
    assert r.status_code == 204 and r.content == b"" and r.headers["etag"]


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/tiles/parts/12/3418/1647.mvt", 404, "z"),
        ("/tiles/parts/21/0/0.mvt", 404, "z"),
        ("/tiles/parts/15/32768/13177.mvt", 400, "x"),
        ("/tiles/parts/15/27350/-1.mvt", 400, "y"),
        ("/tiles/parts/15/abc/1.mvt", 400, "x"),
        ("/ogc/collections/parts/tiles/WebMercatorQuad/15/0/0", 404, "tileRow"),
        ("/ogc/collections/parts/tiles/CGCS2000Quad/14/16384/0", 400, "tileRow"),
        ("/ogc/collections/parts/tiles/CGCS2000Quad/14/0/32768", 400, "tileCol"),
        ("/ogc/collections/parts/tiles/CGCS2000Quad/25/0/0", 404, "tileMatrix"),
        ("/ogc/collections/parts/tiles/WebMercatorQuad/x/0/0", 400, "tileMatrix"),
    ],
)
def test_tile_address_out_of_range_is_problem(
    tiles_client: TestClient, path: str, status: int, field: str
) -> None:
    r = tiles_client.get(path)
    assert r.status_code == status and r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ogc/collections/nope/tiles", "collectionId"),
        ("/ogc/collections/nope/tiles/WebMercatorQuad", "collectionId"),
        ("/ogc/collections/nope/tiles/WebMercatorQuad/15/0/0", "collectionId"),
        ("/tiles/nope/15/27350/13177.mvt", "collectionId"),
        ("/tiles/nope/tilejson.json", "collectionId"),
        ("/ogc/collections/parts/tiles/WorldCRS84Quad", "tileMatrixSetId"),
        ("/ogc/collections/parts/tiles/Nope/15/0/0", "tileMatrixSetId"),
        ("/ogc/tileMatrixSets/Nope", "tileMatrixSetId"),
    ],
)
def test_unknown_collection_or_tms_is_404(tiles_client: TestClient, path: str, field: str) -> None:
    r = tiles_client.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == field


def test_if_none_match_gives_304(tiles_client: TestClient, psql_url: str) -> None:
    tile = data_tile(psql_url, POINT_LAYERS[0], WMQ)
    first = tiles_client.get(ogc_tile_path(POINT_LAYERS[0], WMQ, tile))
    etag = first.headers["etag"]
    again = tiles_client.get(
        ogc_tile_path(POINT_LAYERS[0], WMQ, tile), headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert "max-age" in first.headers["cache-control"]


def test_tile_sessions_disable_jit_and_parallel_gather(tiles_client: TestClient) -> None:
    service = tiles_client.app.state.tiles

    async def session_settings() -> tuple[str, str]:
        async with service.connection() as conn:
            cur = await conn.execute(
                "SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')"
            )
            return await cur.fetchone()

    assert tiles_client.portal.call(session_settings) == ("off", "0")
