"""``/wmts``: WMTS 1.0.0 capabilities, GetTile (KVP and RESTful) and OWS exception reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from owslib.wmts import WebMapTileService

from api.app import create_app
from api.wmts.styles import style_for
from api.wmts.tms import get_tms
from layers.base import default_registry
from spatial.settings import BasemapSettings, DatabaseSettings, Settings
from tests.raster_helpers import DAFENG_CENTRE, opaque_pixels, ows_exception, read_png
from tests.security_support import basic

BASEMAPS = ["dafeng-light", "dafeng-dark"]
PUBLIC_LAYERS = [spec.id for spec in default_registry() if spec.public]  # anonymous sees these
TMS = ["WebMercatorQuad", "CGCS2000Quad"]
WMTS_NS = "{http://www.opengis.net/wmts/1.0}"
OWS_NS = "{http://www.opengis.net/ows/1.1}"
CAPABILITIES = ["/wmts?SERVICE=WMTS&REQUEST=GetCapabilities", "/wmts/1.0.0/WMTSCapabilities.xml"]


def _rc(tms_id: str, z: int, lon: float = DAFENG_CENTRE[0], lat: float = DAFENG_CENTRE[1]):
    tile = get_tms(tms_id).tile(lon, lat, z)
    return tile.y, tile.x


def _kvp(layer: str, tms_id: str, z: int, row: int, col: int, **extra: str) -> dict[str, str]:
    params = {
        "SERVICE": "WMTS",
        "REQUEST": "GetTile",
        "VERSION": "1.0.0",
        "LAYER": layer,
        "STYLE": "default",
        "FORMAT": "image/png",
        "TILEMATRIXSET": tms_id,
        "TILEMATRIX": str(z),
        "TILEROW": str(row),
        "TILECOL": str(col),
    }
    return {**params, **extra}


@pytest.fixture(scope="module")
def capabilities(raster_client: TestClient) -> bytes:
    response = raster_client.get(CAPABILITIES[1])
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("url", CAPABILITIES)
def test_capabilities_parse_in_owslib(raster_client: TestClient, url: str) -> None:
    response = raster_client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    wmts = WebMapTileService("http://testserver/wmts", xml=response.content)
    assert wmts.identification.type == "OGC WMTS" and wmts.identification.version == "1.0.0"
    assert list(wmts.contents) == BASEMAPS + PUBLIC_LAYERS
    assert list(wmts.tilematrixsets) == TMS
    assert {op.name for op in wmts.operations} == {"GetCapabilities", "GetTile"}


@pytest.mark.parametrize("layer", BASEMAPS + PUBLIC_LAYERS)
def test_every_layer_offers_png_in_both_tms(capabilities: bytes, layer: str) -> None:
    item = WebMapTileService("http://testserver/wmts", xml=capabilities).contents[layer]
    assert item.formats == ["image/png"]
    assert item.styles["default"]["isDefault"]
    assert set(item.tilematrixsetlinks) == set(TMS)
    west, south, east, north = item.boundingBoxWGS84
    assert 120.4 < west <= east < 120.6 and 33.1 < south <= north < 33.3
    template = item.resourceURLs[0]["template"]
    assert template.endswith(
        f"/wmts/1.0.0/{layer}/{{Style}}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.png"
    )


def test_cgcs2000_top_left_corner_is_lat_lon(capabilities: bytes) -> None:
    root = etree.fromstring(capabilities)
    tms = next(
        t
        for t in root.iter(f"{WMTS_NS}TileMatrixSet")
        if t.findtext(f"{OWS_NS}Identifier") == "CGCS2000Quad"
    )
    assert tms.findtext(f"{OWS_NS}SupportedCRS") == "urn:ogc:def:crs:EPSG::4490"
    first = tms.find(f"{WMTS_NS}TileMatrix")
    assert first.findtext(f"{WMTS_NS}TopLeftCorner").split() == ["90.0", "-180.0"]
    assert (first.findtext(f"{WMTS_NS}MatrixWidth"), first.findtext(f"{WMTS_NS}MatrixHeight")) == (
        "2",
        "1",
    )


@pytest.mark.parametrize("tms_id", TMS)
def test_scale_denominators_follow_morecantile(capabilities: bytes, tms_id: str) -> None:
    matrices = WebMapTileService("http://testserver/wmts", xml=capabilities).tilematrixsets[tms_id]
    for z in (0, 10, 20):
        expected = get_tms(tms_id).matrix(z).scaleDenominator
        assert matrices.tilematrix[str(z)].scaledenominator == pytest.approx(expected)


def test_web_mercator_is_google_maps_compatible(capabilities: bytes) -> None:
    assert b"urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible" in capabilities
    assert b"urn:ogc:def:crs:EPSG::3857" in capabilities


@pytest.mark.parametrize("tms_id", TMS)
def test_limits_hold_the_district(capabilities: bytes, tms_id: str) -> None:
    link = (
        WebMapTileService("http://testserver/wmts", xml=capabilities)
        .contents["dafeng-light"]
        .tilematrixsetlinks[tms_id]
    )
    limits = link.tilematrixlimits["15"]
    row, col = _rc(tms_id, 15)
    assert limits.mintilerow <= row <= limits.maxtilerow
    assert limits.mintilecol <= col <= limits.maxtilecol


@pytest.mark.parametrize("basemap", BASEMAPS)
@pytest.mark.parametrize("tms_id", TMS)
@pytest.mark.parametrize("encoding", ["kvp", "rest"])
def test_get_basemap_tile(
    raster_client: TestClient, basemap: str, tms_id: str, encoding: str
) -> None:
    row, col = _rc(tms_id, 15)
    if encoding == "kvp":
        response = raster_client.get("/wmts", params=_kvp(basemap, tms_id, 15, row, col))
    else:
        response = raster_client.get(f"/wmts/1.0.0/{basemap}/default/{tms_id}/15/{row}/{col}.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    png = read_png(response.content)
    assert png.shape[1:] == (256, 256)
    assert opaque_pixels(png) == 256 * 256
    assert len(np.unique(png[0])) > 1, "a tile over the district shows more than one colour"


def test_kvp_names_are_case_insensitive(raster_client: TestClient) -> None:
    row, col = _rc("CGCS2000Quad", 14)
    params = {k.lower(): v for k, v in _kvp("dafeng-dark", "CGCS2000Quad", 14, row, col).items()}
    assert raster_client.get("/wmts", params=params).status_code == 200


def test_edge_tiles_keep_the_palette(raster_client: TestClient, basemap_dir: Path) -> None:
    import rasterio

    from data_samples.basemap import PALETTES

    with rasterio.open(basemap_dir / "dafeng-dark.tif") as src:
        left, bottom = src.bounds.left, src.bounds.bottom
    row, col = _rc("CGCS2000Quad", 14, left + 0.001, bottom + 0.001)
    response = raster_client.get(f"/wmts/1.0.0/dafeng-dark/default/CGCS2000Quad/14/{row}/{col}.png")
    png = read_png(response.content)
    opaque = png[3] == 255
    assert 0 < opaque.sum() < 256 * 256, "the tile straddles the raster's edge"
    colours = {tuple(int(v) for v in px) for px in png[:3, opaque].T}
    assert colours <= {tuple(int(v) for v in c) for c in PALETTES["dark"]}


def _feature_point(db_url: str, table: str) -> tuple[float, float]:
    with psycopg.connect(db_url.replace("+psycopg", "")) as conn:
        row = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT CASE WHEN ST_Dimension(geom) = 2 "
            "THEN ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 2) "
            f"ELSE ST_PointOnSurface(geom) END AS p FROM city.{table} ORDER BY code LIMIT 1) s"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize(
    "layer", ["districts", "unit_grids", "roads", "buildings", "parts", "pois"]
)
@pytest.mark.parametrize("tms_id", TMS)
def test_vector_layer_tile_shows_features(
    raster_client: TestClient, db_url: str, layer: str, tms_id: str
) -> None:
    spec = default_registry().get(layer)
    row, col = _rc(tms_id, 16, *_feature_point(db_url, spec.table))
    response = raster_client.get(f"/wmts/1.0.0/{layer}/default/{tms_id}/16/{row}/{col}.png")
    assert response.status_code == 200, response.text
    png = read_png(response.content)
    assert png.shape == (4, 256, 256)
    drawn = png[3] > 0
    assert drawn.any()
    assert tuple(int(v) for v in png[:3, drawn][:, 0]) == style_for(spec).colour


def test_vector_tile_without_features_is_transparent(raster_client: TestClient) -> None:
    row, col = _rc("WebMercatorQuad", 12, 0.5, 0.5)
    response = raster_client.get(f"/wmts/1.0.0/parts/default/WebMercatorQuad/12/{row}/{col}.png")
    assert response.status_code == 200
    assert opaque_pixels(read_png(response.content)) == 0


def test_empty_layer_is_still_served(raster_client: TestClient) -> None:
    row, col = _rc("CGCS2000Quad", 14)
    path = f"/wmts/1.0.0/cases/default/CGCS2000Quad/14/{row}/{col}.png"
    response = raster_client.get(path, headers=basic("acceptor"))  # cases need cases:read
    assert response.status_code == 200


GOOD = _kvp("dafeng-light", "WebMercatorQuad", 14, 6548, 13675)
KVP_ERRORS = [
    ({}, 400, "MissingParameterValue", "service"),
    ({"SERVICE": "WMS", "REQUEST": "GetCapabilities"}, 400, "InvalidParameterValue", "service"),
    ({"SERVICE": "WMTS"}, 400, "MissingParameterValue", "request"),
    ({"SERVICE": "WMTS", "REQUEST": "GetFeatureInfo"}, 501, "OperationNotSupported", "request"),
    ({**GOOD, "VERSION": ""}, 400, "MissingParameterValue", "version"),
    ({**GOOD, "VERSION": "2.0.0"}, 400, "InvalidParameterValue", "version"),
    ({k: v for k, v in GOOD.items() if k != "TILECOL"}, 400, "MissingParameterValue", "tilecol"),
    ({**GOOD, "LAYER": "osm"}, 400, "InvalidParameterValue", "layer"),
    ({**GOOD, "STYLE": "dark"}, 400, "InvalidParameterValue", "style"),
    ({**GOOD, "FORMAT": "image/jpeg"}, 400, "InvalidParameterValue", "format"),
    ({**GOOD, "TILEMATRIXSET": "EPSG:4326"}, 400, "InvalidParameterValue", "tilematrixset"),
    ({**GOOD, "TILEMATRIX": "21"}, 400, "InvalidParameterValue", "tilematrix"),
    ({**GOOD, "TILEMATRIX": "x"}, 400, "InvalidParameterValue", "tilematrix"),
    ({**GOOD, "TILEROW": "-1"}, 400, "InvalidParameterValue", "tilerow"),
    ({**GOOD, "TILEROW": "²"}, 400, "InvalidParameterValue", "tilerow"),
    ({**GOOD, "TILEROW": "16384"}, 400, "TileOutOfRange", "tilerow"),
    ({**GOOD, "TILECOL": "99999999999999999999"}, 400, "TileOutOfRange", "tilecol"),
]


@pytest.mark.parametrize(("params", "status", "code", "locator"), KVP_ERRORS)
def test_kvp_errors_are_exception_reports(
    raster_client: TestClient, params: dict[str, str], status: int, code: str, locator: str
) -> None:
    response = raster_client.get("/wmts", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/xml"
    assert ows_exception(response.content) == (code, locator)


REST_ERRORS = [
    ("osm/default/WebMercatorQuad/14/6548/13675.png", "InvalidParameterValue", "layer"),
    ("roads/bold/WebMercatorQuad/14/6548/13675.png", "InvalidParameterValue", "style"),
    ("roads/default/GoogleCRS84Quad/14/6548/13675.png", "InvalidParameterValue", "tilematrixset"),
    ("roads/default/CGCS2000Quad/25/6548/13675.png", "InvalidParameterValue", "tilematrix"),
    ("roads/default/CGCS2000Quad/2/4/0.png", "TileOutOfRange", "tilerow"),
    ("roads/default/CGCS2000Quad/2/0/8.png", "TileOutOfRange", "tilecol"),
    ("roads/default/WebMercatorQuad/14/6548/13675.jpg", "InvalidParameterValue", "format"),
    ("roads/default/WebMercatorQuad/14/6548/13675", "InvalidParameterValue", "format"),
]


@pytest.mark.parametrize(("path", "code", "locator"), REST_ERRORS)
def test_rest_errors_are_404_exception_reports(
    raster_client: TestClient, path: str, code: str, locator: str
) -> None:
    response = raster_client.get(f"/wmts/1.0.0/{path}")
    assert response.status_code == 404
    assert ows_exception(response.content) == (code, locator)


@pytest.fixture
def unbuilt_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(db=DatabaseSettings(url=db_url), basemap=BasemapSettings(dir=tmp_path))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_unbuilt_basemaps_are_not_listed(unbuilt_client: TestClient) -> None:
    response = unbuilt_client.get(CAPABILITIES[0])
    wmts = WebMapTileService("http://testserver/wmts", xml=response.content)
    assert list(wmts.contents) == PUBLIC_LAYERS


def test_unbuilt_basemap_tile_is_503(unbuilt_client: TestClient) -> None:
    response = unbuilt_client.get(
        "/wmts/1.0.0/dafeng-light/default/WebMercatorQuad/14/6548/13675.png"
    )
    assert response.status_code == 503
    assert ows_exception(response.content) == ("NoApplicableCode", "layer")
