"""Start cityops and its peers (tipg, stock pygeoapi) on loopback ports against one database.

Peers live in their own virtual environments under ``var/bench/`` (created on first use from
PyPI), so their dependencies never mix with ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "var" / "bench"
PY312 = shutil.which("python3.12") or "python3"


def _venv(name: str, packages: list[str], python: str = PY312) -> Path:
    venv = BENCH / name
    marker = venv / ".installed"
    if not marker.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", *packages], check=True)
        marker.touch()
    return venv / "bin"


def _wait(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
                if resp.status < 500:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not come up: {url}")


@contextmanager
def _process(cmd: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(ready)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _uvicorn(bin_dir: Path, app: str, port: int, workers: int, factory: bool = False) -> list[str]:
    cmd = [
        str(bin_dir / "uvicorn"),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return cmd + (["--factory"] if factory else [])


@contextmanager
def cityops(url: str, port: int, workers: int = 2, tile_cache_mb: int = 128) -> Iterator[str]:
    """Our server (api.app:create_app); ``tile_cache_mb=0`` turns the tile cache off."""
    cmd = _uvicorn(ROOT / ".venv/bin", "api.app:create_app", port, workers, factory=True)
    # wrk sends far more than the anonymous per-IP budget; keep the limiter (and its cost) on
    # with a budget no benchmark reaches.
    env = {
        "DATABASE_URL": url,
        "CITY_TILES_CACHE_MB": str(tile_cache_mb),
        "CITY_LIMITS_ANONYMOUS_PER_MINUTE": "100000000",
    }
    with _process(cmd, env, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def cityops_nocache(url: str, port: int, workers: int = 2) -> Iterator[str]:
    """Our server with the tile cache off: every tile is rendered by PostGIS."""
    with cityops(url, port, workers, tile_cache_mb=0) as base:
        yield base


@contextmanager
def tipg(url: str, port: int, workers: int = 2) -> Iterator[str]:
    """The tipg 1.x server exposing the ``city`` schema."""
    bin_dir = _venv("venv-tipg", ["tipg", "uvicorn"])
    env = {
        "DATABASE_URL": url,
        "TIPG_DB_SCHEMAS": '["city", "bench"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
    }
    with _process(
        _uvicorn(bin_dir, "tipg.main:app", port, workers),
        env,
        f"http://127.0.0.1:{port}/collections",
    ):
        yield f"http://127.0.0.1:{port}"


def _pygeoapi_config(url: str, port: int) -> str:
    u = make_url(url)
    data = (
        f"{{host: {u.host}, port: {u.port}, dbname: {u.database}, user: {u.username}, "
        f"password: '{u.password or ''}', search_path: [bench, public]}}"
    )
    return f"""
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: bench, description: bench, keywords: [bench], terms_of_service: x,
                   url: http://example.org}}
  license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}
  provider: {{name: bench, url: http://example.org}}
  contact: {{name: bench}}
resources:
  parts:
    type: collection
    title: parts
    description: components
    keywords: [parts]
    extents:
      spatial: {{bbox: [120.43, 33.16, 120.53, 33.24], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {data}
        id_field: code
        table: parts
        geom_field: geom
"""


PARTS_4326 = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.parts;
CREATE TABLE bench.parts AS
  SELECT code, class_code, major_code, minor_code, name, department, grid_code, status,
         initial_time, ST_SetSRID(geom, 4326)::geometry(Point, 4326) AS geom FROM city.parts;
ALTER TABLE bench.parts ADD PRIMARY KEY (code);
CREATE INDEX ON bench.parts USING gist (geom);
ANALYZE bench.parts;
"""


def parts_4326(url: str) -> None:
    """Stock pygeoapi found no features for CRS84 bboxes on the 4490 table; give it a 4326 copy."""
    import psycopg

    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        conn.execute(PARTS_4326)


@contextmanager
def pygeoapi(url: str, port: int, workers: int = 2) -> Iterator[str]:
    """Stock pygeoapi with its PostgreSQL provider on a 4326 copy of the components."""
    bin_dir = _venv(
        "venv-pga",
        ["pygeoapi", "psycopg2-binary", "geoalchemy2", "sqlalchemy", "uvicorn", "starlette"],
    )
    cfg = BENCH / "pygeoapi-config.yml"
    oas = BENCH / "pygeoapi-openapi.yml"
    cfg.write_text(_pygeoapi_config(url, port))
    env = {"PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(oas)}
    subprocess.run(
        [str(bin_dir / "pygeoapi"), "openapi", "generate", str(cfg), "--output-file", str(oas)],
        check=True,
        env={**os.environ, **env},
        capture_output=True,
    )
    cmd = _uvicorn(bin_dir, "pygeoapi.starlette_app:APP", port, workers)
    with _process(cmd, env, f"http://127.0.0.1:{port}/collections/parts"):
        yield f"http://127.0.0.1:{port}"
