"""QGIS itself (python3-qgis, offscreen) loads our OAPIF, WFS and WMTS layers as valid layers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

PROBE = Path(__file__).with_name("qgis_probe.py")


@pytest.fixture(scope="module")
def qgis(live_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    runtime = tmp_path_factory.mktemp("xdg")
    runtime.chmod(0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime)}
    out = subprocess.run(
        ["/usr/bin/python3", str(PROBE), live_server, "dafeng-light", "default", "WebMercatorQuad"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def grid_count(psql_url: str) -> int:
    with psycopg.connect(psql_url) as conn:
        return conn.execute("SELECT count(*) FROM city.unit_grids").fetchone()[0]


@pytest.mark.parametrize("source", ["oapif", "wfs"])
def test_qgis_loads_vector_layer(qgis: dict, psql_url: str, source: str) -> None:
    layer = qgis[source]
    assert layer["valid"], layer
    assert layer["features"] == grid_count(psql_url)
    assert layer["crs"] in ("EPSG:4490", "OGC:CRS84", "EPSG:4326")


def test_qgis_loads_wmts_basemap(qgis: dict) -> None:
    assert qgis["wmts"]["valid"], qgis["wmts"]
    assert qgis["wmts"]["crs"] == "EPSG:3857"
