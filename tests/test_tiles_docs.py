"""OGC API – Tiles documents: tile matrix sets (OGC TMS 2.0), tilesets, TileJSON, link relations."""

from __future__ import annotations

from collections.abc import Iterator

import morecantile
import pytest
from fastapi.testclient import TestClient

from layers.registry import LayerSpec
from spatial.tms import TileGrid
from tests.security_support import basic
from tests.tiles_support import GRID_IDS, GRIDS, LAYERS, expected_properties, fetch, open_client

REL = "http://www.opengis.net/def/rel/ogc/1.0/"
TMS_MATRIX_MEMBERS = {
    "id",
    "scaleDenominator",
    "cellSize",
    "pointOfOrigin",
    "tileWidth",
    "tileHeight",
    "matrixWidth",
    "matrixHeight",
}
PARTS = next(s for s in LAYERS if s.id == "parts")


@pytest.fixture(scope="module")
def tiles_client(db_url: str) -> Iterator[TestClient]:
    yield from open_client(db_url, basic("shiftlead"))  # every layer's documents, fleet too


def _relative(href: str) -> str:
    return href.removeprefix("http://testserver")


@pytest.mark.parametrize("tms_id", GRID_IDS)
def test_tile_matrix_set_is_ogc_tms_2(tiles_client: TestClient, tms_id: str) -> None:
    doc = tiles_client.get(f"/ogc/tileMatrixSets/{tms_id}").json()
    tms = morecantile.TileMatrixSet.model_validate(doc)  # the TMS 2.0 model, strict on axes
    assert doc["id"] == tms_id and {"crs", "tileMatrices"} <= set(doc)
    assert all(TMS_MATRIX_MEMBERS <= set(m) for m in doc["tileMatrices"])
    assert [m["id"] for m in doc["tileMatrices"]] == [str(z) for z in range(len(tms.tileMatrices))]


def test_cgcs2000_quad_is_geographic_2_by_1(tiles_client: TestClient) -> None:
    doc = tiles_client.get("/ogc/tileMatrixSets/CGCS2000Quad").json()
    level0 = doc["tileMatrices"][0]
    assert doc["crs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert doc["orderedAxes"] == ["Lat", "Lon"] and level0["pointOfOrigin"] == [90, -180]
    assert (level0["matrixWidth"], level0["matrixHeight"], level0["cellSize"]) == (2, 1, 0.703125)


def test_tile_matrix_set_list_links_resolve(tiles_client: TestClient) -> None:
    doc = tiles_client.get("/ogc/tileMatrixSets").json()
    assert [t["id"] for t in doc["tileMatrixSets"]] == GRID_IDS
    for item in doc["tileMatrixSets"]:
        [link] = [x for x in item["links"] if x["rel"] == f"{REL}tiling-scheme"]
        assert tiles_client.get(_relative(link["href"])).json()["id"] == item["id"]


@pytest.mark.parametrize("spec", LAYERS, ids=lambda s: s.id)
def test_tileset_list_has_spec_links(tiles_client: TestClient, spec: LayerSpec) -> None:
    doc = tiles_client.get(f"/ogc/collections/{spec.id}/tiles").json()
    assert len(doc["tilesets"]) == len(GRIDS)
    for tileset, grid in zip(doc["tilesets"], GRIDS, strict=True):
        rels = {link["rel"]: link for link in tileset["links"]}
        assert tileset["dataType"] == "vector" and tileset["crs"] == grid.crs
        assert {"self", f"{REL}tiling-scheme", "item"} <= set(rels)
        assert rels["item"]["templated"] and rels["item"]["href"].endswith(
            f"/{grid.id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
        )


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
def test_tileset_describes_the_layer(
    tiles_client: TestClient, psql_url: str, grid: TileGrid
) -> None:
    doc = tiles_client.get(f"/ogc/collections/parts/tiles/{grid.id}").json()
    [layer] = doc["layers"]
    zooms = grid.zoom_range(PARTS.tiles)
    assert layer["id"] == "parts" and layer["geometryType"] == "points"
    assert list(layer["propertiesSchema"]["properties"]) == expected_properties(psql_url, PARTS)
    assert [int(x["tileMatrix"]) for x in doc["tileMatrixSetLimits"]] == list(zooms)
    [(version,)] = fetch(psql_url, "SELECT version FROM city.layer_versions WHERE layer = 'parts'")
    assert doc["version"] == str(version)
    [(xmin, ymin, xmax, ymax)] = fetch(
        psql_url,
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        "FROM (SELECT ST_Extent(geom) e FROM city.parts) s",
    )
    box = doc["boundingBox"]
    assert box["lowerLeft"] == pytest.approx([xmin, ymin]) and box["upperRight"] == pytest.approx(
        [xmax, ymax]
    )


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
def test_following_links_like_the_ogc_test_suite(tiles_client: TestClient, grid: TileGrid) -> None:
    """OGC API – Tiles abstract tests A.6/A.7: the first limit's corner tile, then one row past."""
    tilesets = tiles_client.get("/ogc/collections/pois/tiles").json()["tilesets"]
    tileset = next(t for t in tilesets if t["crs"] == grid.crs)
    self_href = next(x["href"] for x in tileset["links"] if x["rel"] == "self")
    doc = tiles_client.get(_relative(self_href)).json()
    template = next(x["href"] for x in doc["links"] if x["rel"] == "item")
    first = doc["tileMatrixSetLimits"][0]

    def url(row: int) -> str:
        filled = template.replace("{tileMatrix}", first["tileMatrix"])
        return _relative(
            filled.replace("{tileRow}", str(row)).replace("{tileCol}", str(first["minTileCol"]))
        )

    assert tiles_client.get(url(first["maxTileRow"])).status_code in (200, 204)
    assert tiles_client.get(url(first["maxTileRow"] + 1)).status_code in (400, 404)


def test_tilejson_points_at_xyz_tiles(tiles_client: TestClient, psql_url: str) -> None:
    doc = tiles_client.get("/tiles/parts/tilejson.json").json()
    [layer] = doc["vector_layers"]
    assert doc["tilejson"] == "3.0.0" and doc["tiles"] == [
        "http://testserver/tiles/parts/{z}/{x}/{y}.mvt"
    ]
    assert (doc["minzoom"], doc["maxzoom"]) == (PARTS.tiles.minzoom, PARTS.tiles.maxzoom)
    assert layer["id"] == "parts" and list(layer["fields"]) == expected_properties(psql_url, PARTS)
    west, south, east, north = doc["bounds"]
    assert 120.4 < west < east < 120.6 and 33.1 < south < north < 33.3


def test_tiles_are_in_openapi(tiles_client: TestClient) -> None:
    paths = tiles_client.get("/openapi.json").json()["paths"]
    assert (
        "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
        in paths
    )
    assert "/tiles/{collectionId}/{z}/{x}/{y}.mvt" in paths
