"""Real clients against a real server: OWSLib and GDAL's OAPIF driver read every collection."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from owslib.ogcapi.features import Features

from layers.base import default_registry
from spatial.features_crs import SUPPORTED
from tests.ogc_support import PUBLIC_LAYER_IDS, open_pg, scalar

ROOT = Path(__file__).resolve().parent.parent
Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def server(live_server: str) -> str:
    """The shared live server (tests/conftest.py)."""
    return f"{live_server}/ogc"


@pytest.fixture(scope="module")
def pg(db_url: str) -> Iterator[Conn]:
    yield from open_pg(db_url)


def _count(pg: Conn, layer: str) -> int:
    return int(scalar(pg, f"SELECT count(*) FROM {default_registry().get(layer).qualified_table}"))


@pytest.mark.parametrize("layer", PUBLIC_LAYER_IDS)
def test_owslib_reads_each_collection(server: str, pg: Conn, layer: str) -> None:
    api = Features(server)
    assert layer in api.feature_collections()
    collection = api.collection(layer)
    assert collection["storageCrs"].endswith("/4490")
    assert {c.uri for c in SUPPORTED} <= set(collection["crs"])
    expected = _count(pg, layer)
    page = api.collection_items(layer, limit=7)
    assert page["numberMatched"] == expected
    assert len(page["features"]) == page["numberReturned"] == min(7, expected)
    queryables = api.collection_queryables(layer)["properties"]
    assert set(default_registry().get(layer).queryables) <= set(queryables)


def test_owslib_filters_and_reprojects(server: str, pg: Conn) -> None:
    api = Features(server)
    expected = scalar(pg, "SELECT count(*) FROM parts WHERE major_code = '04'")
    page = api.collection_items(
        "parts",
        limit=3,
        filter="major_code = '04'",
        crs="http://www.opengis.net/def/crs/EPSG/0/3857",
    )
    assert page["numberMatched"] == expected
    x, y = page["features"][0]["geometry"]["coordinates"]
    assert 1.3e7 < x < 1.35e7 and 3.8e6 < y < 4.0e6  # Web Mercator metres, easting first


def _gdal_version() -> tuple[int, int]:
    out = subprocess.run(["ogrinfo", "--version"], capture_output=True, text=True, check=True)
    major, minor = re.search(r"GDAL (\d+)\.(\d+)", out.stdout).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


needs_gdal = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin not installed")


def _ogrinfo(*args: str) -> str:
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60"}
    done = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_gdal
@pytest.mark.parametrize("layer", PUBLIC_LAYER_IDS)
def test_ogrinfo_summarises_each_collection(server: str, pg: Conn, layer: str) -> None:
    out = _ogrinfo("-so", f"OAPIF:{server}", layer)
    count = re.search(r"Feature Count: (-?\d+)", out)
    assert count and int(count.group(1)) == _count(pg, layer), out
    if _gdal_version() < (3, 7):  # before OAPIF Part 2 support GDAL reads CRS84 (lon/lat)
        assert 'ID["EPSG",4326]' in out and "Data axis to CRS axis mapping: 2,1" in out
    else:
        assert 'ID["EPSG",4490]' in out or 'ID["EPSG",4326]' in out


@needs_gdal
def test_ogrinfo_reads_features_in_lon_lat(server: str, pg: Conn) -> None:
    out = _ogrinfo("-al", "-q", f"OAPIF:{server}", "streets")
    names = set(re.findall(r"^\s*name \(String\) = (.+)$", out, re.M))
    assert names == {str(n) for (n,) in pg.execute("SELECT name FROM streets").fetchall()}
    lon, lat = map(float, re.search(r"MULTIPOLYGON \(\(\(([\d.]+) ([\d.]+)", out).groups())  # type: ignore[union-attr]
    assert 120 < lon < 121 and 33 < lat < 34
