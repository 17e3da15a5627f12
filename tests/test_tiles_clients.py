"""Real clients against a real uvicorn server: OWSLib (OGC API) and GDAL's MVT driver.

OWSLib 0.36 has no ``owslib.ogcapi.tiles`` module, so the test extends OWSLib's OGC API – Common
client (``owslib.ogcapi.API``) with the Tiles paths, the way OWSLib's own Features and Coverages
clients extend it, and follows the documents' link relations.
"""

from __future__ import annotations

from typing import Any

import fiona
import pytest
from owslib.ogcapi import API

from layers.base import default_registry
from spatial.tms import tile_grids
from tests.tiles_support import GRID_IDS, decode, fetch

REL = "http://www.opengis.net/def/rel/ogc/1.0/"
POIS = default_registry().get("pois")


class OgcApiTiles(API):
    """OWSLib's OGC API client with the OGC API – Tiles resources."""

    def tile_matrix_sets(self) -> dict[str, Any]:
        return self._request(path="tileMatrixSets")

    def tilesets(self, collection: str) -> dict[str, Any]:
        return self._request(path=f"collections/{collection}/tiles")

    def tile(self, template: str, matrix: str, row: int, col: int) -> bytes:
        href = template.format(tileMatrix=matrix, tileRow=row, tileCol=col)
        return self._request(path=href.removeprefix(self.url), as_dict=False)


@pytest.fixture(scope="module")
def tiles_server(live_server: str) -> str:
    """The shared live server (tests/conftest.py)."""
    return live_server


def _client(base: str) -> OgcApiTiles:
    return OgcApiTiles(f"{base}/ogc", json_='{"links": []}')


def test_owslib_reads_the_tile_matrix_sets(tiles_server: str) -> None:
    api = _client(tiles_server)
    doc = api.tile_matrix_sets()
    assert [t["id"] for t in doc["tileMatrixSets"]] == GRID_IDS
    for item in doc["tileMatrixSets"]:
        [link] = [x for x in item["links"] if x["rel"] == f"{REL}tiling-scheme"]
        definition = api._request(path=link["href"].removeprefix(api.url))
        assert definition["id"] == item["id"] and definition["crs"] == item["crs"]


@pytest.mark.parametrize("tms_id", GRID_IDS)
def test_owslib_follows_tileset_links_to_a_tile(
    tiles_server: str, psql_url: str, tms_id: str
) -> None:
    api = _client(tiles_server)
    grid = tile_grids()[tms_id]
    listing = api.tilesets("pois")
    tileset = next(t for t in listing["tilesets"] if t["crs"] == grid.crs)
    template = next(x["href"] for x in tileset["links"] if x["rel"] == "item")
    (lon, lat), *_ = fetch(psql_url, "SELECT ST_X(geom), ST_Y(geom) FROM city.pois ORDER BY code")
    tile = grid.tms.tile(lon, lat, grid.zoom_range(POIS.tiles).start + 4)
    data = api.tile(template, str(tile.z), tile.y, tile.x)
    assert api.response_headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert decode(data)["pois"]["features"]


def test_gdal_reads_an_xyz_tile_georeferenced(
    tiles_server: str, psql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GDAL places each feature of /tiles/parts/{z}/{x}/{y}.mvt in EPSG:3857 from the path alone."""
    monkeypatch.setitem(fiona.supported_drivers, "MVT", "r")
    grid = tile_grids()["WebMercatorQuad"]
    (lon, lat), *_ = fetch(psql_url, "SELECT ST_X(geom), ST_Y(geom) FROM city.parts ORDER BY code")
    tile = grid.tms.tile(lon, lat, 16)
    url = f"/vsicurl/{tiles_server}/tiles/parts/{tile.z}/{tile.x}/{tile.y}.mvt"
    with fiona.open(url, driver="MVT") as src:
        assert src.crs.to_epsg() == 3857
        read = {f.properties["code"]: f.geometry.coordinates for f in src}
    truth = dict(
        (code, (x, y))
        for code, x, y in fetch(
            psql_url,
            "SELECT code, ST_X(g), ST_Y(g) FROM (SELECT code, ST_Transform(geom, 3857) g "
            "FROM city.parts WHERE code = ANY(%s)) s",
            list(read),
        )
    )
    unit = (grid.bounds(tile.z, tile.x, tile.y)[2] - grid.bounds(tile.z, tile.x, tile.y)[0]) / 4096
    assert read and set(read) == set(truth)
    assert all(
        abs(read[c][0] - truth[c][0]) <= unit and abs(read[c][1] - truth[c][1]) <= unit
        for c in read
    )
