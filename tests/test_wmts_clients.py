"""Real WMTS clients against a real uvicorn server: OWSLib and GDAL's ``gdalinfo WMTS:``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from owslib.wmts import WebMapTileService

from api.wmts.tms import get_tms
from layers.base import default_registry
from tests.raster_helpers import DAFENG_CENTRE, opaque_pixels, read_png

TMS = ["WebMercatorQuad", "CGCS2000Quad"]


@pytest.fixture(scope="module")
def wmts_server(live_server: str) -> str:
    """The shared live server (tests/conftest.py)."""
    return live_server


def _gdalinfo(url: str, tmp_path: Path, *options: str) -> dict:
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        pytest.skip("GDAL command-line tools are not installed")
    env = {**os.environ, "GDAL_DEFAULT_WMS_CACHE_PATH": str(tmp_path / "cache")}
    result = subprocess.run(
        [gdalinfo, "-json", *options, url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_owslib_reads_capabilities(wmts_server: str) -> None:
    wmts = WebMapTileService(f"{wmts_server}/wmts")
    public = [spec.id for spec in default_registry() if spec.public]  # anonymous sees these
    assert list(wmts.contents) == ["dafeng-light", "dafeng-dark", *public]
    assert list(wmts.tilematrixsets) == TMS
    assert wmts.tilematrixsets["CGCS2000Quad"].crs == "urn:ogc:def:crs:EPSG::4490"


@pytest.mark.parametrize("layer", ["dafeng-light", "dafeng-dark", "roads"])
@pytest.mark.parametrize("tms_id", TMS)
def test_owslib_gets_a_tile(wmts_server: str, layer: str, tms_id: str) -> None:
    wmts = WebMapTileService(f"{wmts_server}/wmts")
    tile = get_tms(tms_id).tile(*DAFENG_CENTRE, 13)
    response = wmts.gettile(
        layer=layer,
        style="default",
        tilematrixset=tms_id,
        tilematrix="13",
        row=tile.y,
        column=tile.x,
        format="image/png",
    )
    png = read_png(response.read())
    assert png.shape[1:] == (256, 256)
    assert opaque_pixels(png) > 0


def test_gdal_lists_every_layer(wmts_server: str, tmp_path: Path) -> None:
    info = _gdalinfo(f"WMTS:{wmts_server}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities", tmp_path)
    names = [v for k, v in info["metadata"]["SUBDATASETS"].items() if k.endswith("_NAME")]
    public = [spec for spec in default_registry() if spec.public]  # anonymous sees these
    assert len(names) == 2 * (2 + len(public))
    assert any("layer=dafeng-light,tilematrixset=CGCS2000Quad" in n for n in names)


@pytest.mark.parametrize(
    ("tms_id", "epsg"), [("CGCS2000Quad", "4490"), ("WebMercatorQuad", "3857")]
)
def test_gdal_reads_the_basemap(wmts_server: str, tmp_path: Path, tms_id: str, epsg: str) -> None:
    url = (
        f"WMTS:{wmts_server}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities,"
        f"layer=dafeng-light,tilematrixset={tms_id}"
    )
    info = _gdalinfo(url, tmp_path, "-stats", "-oo", "ZOOM_LEVEL=12")
    assert info["driverShortName"] == "WMTS"
    assert f'ID["EPSG",{epsg}]' in info["coordinateSystem"]["wkt"]
    (west, south), (east, north) = (
        info["wgs84Extent"]["coordinates"][0][1],
        info["wgs84Extent"]["coordinates"][0][3],
    )
    assert 120.40 < west < 120.44 and 120.52 < east < 120.56
    assert 33.14 < south < 33.17 and 33.23 < north < 33.26
    red, alpha = info["bands"][0], info["bands"][3]
    assert alpha["colorInterpretation"] == "Alpha" and alpha["maximum"] == 255
    assert red["minimum"] < red["maximum"], "the basemap was read, not blank"
