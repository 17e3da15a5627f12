"""``/raster``: titiler over registered basemap ids — never a raw ``url=`` — and offline HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from owslib.wmts import WebMapTileService

from api.app import create_app
from api.wmts.tms import get_tms
from spatial.settings import BasemapSettings, DatabaseSettings, Settings
from tests.raster_helpers import DAFENG_CENTRE, opaque_pixels, read_png

BASEMAPS = ["dafeng-light", "dafeng-dark"]
TMS = ["WebMercatorQuad", "CGCS2000Quad"]


def _tile(tms_id: str, z: int = 14) -> tuple[int, int, int]:
    tile = get_tms(tms_id).tile(*DAFENG_CENTRE, z)
    return tile.z, tile.x, tile.y


@pytest.fixture
def unbuilt_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(db=DatabaseSettings(url=db_url), basemap=BasemapSettings(dir=tmp_path))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_list_basemaps(raster_client: TestClient) -> None:
    listed = raster_client.get("/raster").json()
    assert [b["id"] for b in listed] == BASEMAPS
    assert all(b["built"] for b in listed)
    assert listed[0]["tiles"].endswith("/raster/dafeng-light/tiles/WebMercatorQuad/{z}/{x}/{y}.png")


@pytest.mark.parametrize("basemap", BASEMAPS)
@pytest.mark.parametrize("tms_id", TMS)
def test_tile_is_a_png(raster_client: TestClient, basemap: str, tms_id: str) -> None:
    z, x, y = _tile(tms_id)
    response = raster_client.get(f"/raster/{basemap}/tiles/{tms_id}/{z}/{x}/{y}.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    png = read_png(response.content)
    assert png.shape[1:] == (256, 256)
    assert opaque_pixels(png) == 256 * 256


def test_info_reports_cgcs2000(raster_client: TestClient) -> None:
    info = raster_client.get("/raster/dafeng-dark/info").json()
    assert info["crs"].endswith("/EPSG/0/4490")
    assert 120.4 < info["bounds"][0] < info["bounds"][2] < 120.6


@pytest.mark.parametrize(
    "path",
    [
        "/raster/osm/info",
        "/raster/osm/tiles/WebMercatorQuad/14/13675/6548.png",
        "/raster/..%2F..%2Fetc%2Fpasswd/info",
        "/raster/osm/WMTSCapabilities.xml",
    ],
)
def test_unknown_basemap_is_404(raster_client: TestClient, path: str) -> None:
    response = raster_client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_raw_url_is_not_a_parameter(raster_client: TestClient) -> None:
    spec = raster_client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        if path.startswith("/raster"):
            for operation in item.values():
                names = {p["name"] for p in operation.get("parameters", [])}
                assert "url" not in names, path


def test_raw_url_is_ignored(raster_client: TestClient) -> None:
    plain = raster_client.get("/raster/dafeng-light/info").json()
    sneaky = raster_client.get("/raster/dafeng-light/info", params={"url": "/etc/passwd"})
    assert sneaky.status_code == 200 and sneaky.json() == plain
    assert raster_client.get("/raster/info", params={"url": "/etc/passwd"}).status_code == 404


def test_tile_outside_the_basemap_is_404(raster_client: TestClient) -> None:
    response = raster_client.get("/raster/dafeng-light/tiles/WebMercatorQuad/1/0/0.png")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_unknown_tile_matrix_set_is_400(raster_client: TestClient) -> None:
    response = raster_client.get("/raster/dafeng-light/tiles/LINZAntarticaMapTilegrid/1/0/0.png")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_unbuilt_basemap_is_503(unbuilt_client: TestClient) -> None:
    response = unbuilt_client.get("/raster/dafeng-light/info")
    assert response.status_code == 503
    assert "cityops samples basemaps" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    ["/raster/dafeng-light/tiles?f=html", "/raster/dafeng-dark/tiles/CGCS2000Quad?f=html"],
)
def test_html_pages_load_no_external_assets(raster_client: TestClient, path: str) -> None:
    response = raster_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", response.text)
    assert urls, "the page links its tilesets"
    external = [u for u in urls if re.match(r"(https?:)?//", u) and "//testserver" not in u]
    assert external == []
    assert "cdn" not in response.text.lower()


@pytest.mark.parametrize("tms_id", TMS)
def test_map_viewer_is_not_mounted(raster_client: TestClient, tms_id: str) -> None:
    assert raster_client.get(f"/raster/dafeng-light/{tms_id}/map.html").status_code == 404


def test_basemap_wmts_capabilities(raster_client: TestClient) -> None:
    response = raster_client.get("/raster/dafeng-dark/WMTSCapabilities.xml")
    assert response.status_code == 200
    wmts = WebMapTileService("http://testserver/wmts", xml=response.content)
    assert list(wmts.contents) == ["dafeng-dark"]
    assert set(wmts.tilematrixsets) == set(TMS)
