"""Test fixtures: a throwaway PostGIS cluster, a migrated database with the small samples."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from data_samples.demo_users import load_demo_users
from data_samples.load import load
from data_samples.modules import load_module_samples
from spatial.cluster import Cluster
from spatial.db import drop_database, ensure_database, libpq_url, make_engine
from spatial.migrate import upgrade
from spatial.security.keystore import KeyStore
from spatial.settings import DatabaseSettings, SecuritySettings, Settings
from tests.redis_support import redis_url  # noqa: F401

# Every app a test builds (and the live uvicorn server, which inherits the environment) uses
# throwaway key material and media store, a fast password hash and no rate limit; tests of
# those set their own.
os.environ.setdefault(
    "CITY_SECURITY_KEY_DIR", str(Path(tempfile.mkdtemp(prefix="cityops-keys-")) / "keys")
)
os.environ.setdefault("CITY_SECURITY_PASSWORD_ITERATIONS", "2000")
os.environ.setdefault("CITY_LIMITS_ENABLED", "false")
os.environ.setdefault("CITY_MEDIA_DIR", tempfile.mkdtemp(prefix="cityops-media-"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostGIS server: ``CITYOPS_TEST_SERVER_URL`` or a throwaway cluster."""
    external = os.environ.get("CITYOPS_TEST_SERVER_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="cityops-pg-"))
    root.chmod(0o755)
    cluster = Cluster(root / "data")
    cluster.ensure_running(fast=True)
    try:
        yield cluster.url()
    finally:
        cluster.destroy()
        root.rmdir()


def _database(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _clone(pg_server: str, template: str, name: str) -> str:
    """``CREATE DATABASE name TEMPLATE template`` (the template must have no sessions)."""
    url = _database(pg_server, name)
    engine = make_engine(_database(pg_server, "postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def sample_template(pg_server: str) -> Iterator[str]:
    """A migrated database with the small Dafeng sample that nobody connects to after setup."""
    url = _database(pg_server, f"cityops_template_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    upgrade(url)
    load(url, "small", progress=lambda _msg: None)
    security = SecuritySettings()
    load_demo_users(url, KeyStore.ensure(security.key_dir), security.password_iterations)
    load_module_samples(url, "small")
    yield make_url(url).database
    drop_database(url)


@pytest.fixture(scope="session")
def db_url(pg_server: str, sample_template: str) -> Iterator[str]:
    """The shared sample database (read-only for tests)."""
    url = _clone(pg_server, sample_template, f"cityops_test_{uuid.uuid4().hex[:8]}")
    yield url
    drop_database(url)


@pytest.fixture
def scratch_url(pg_server: str, sample_template: str) -> Iterator[str]:
    """A private copy of the sample database for tests that write."""
    url = _clone(pg_server, sample_template, f"cityops_scratch_{uuid.uuid4().hex[:8]}")
    yield url
    drop_database(url)


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Application settings pointing at the sample database."""
    return Settings(db=DatabaseSettings(url=db_url))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A test client over the app (lifespan opens the pool)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def psql_url(db_url: str) -> str:
    """The sample database URL in libpq form."""
    return libpq_url(db_url)


@pytest.fixture(scope="session")
def live_server(
    db_url: str, basemap_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One real uvicorn server over the sample database for external clients (GDAL, QGIS)."""
    import subprocess
    import sys
    import time
    import urllib.request

    from spatial.cluster import free_port

    port = free_port(18000)
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {**os.environ, "DATABASE_URL": db_url, "CITY_BASEMAP_DIR": str(basemap_dir)}
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"uvicorn did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


TEST_BASEMAP_RESOLUTION = 0.0001  # degrees per pixel: coarse, for speed (~1000 × 770 px)


@pytest.fixture(scope="session")
def basemap_dir(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The light and dark basemaps rendered coarsely from the sample database."""
    from data_samples.basemap import build_basemaps

    directory = tmp_path_factory.mktemp("basemaps")
    build_basemaps(db_url, directory, TEST_BASEMAP_RESOLUTION, progress=lambda _msg: None)
    return directory


@pytest.fixture(scope="module")
def raster_client(db_url: str, basemap_dir: Path) -> Iterator[TestClient]:
    """A test client whose basemap directory holds the test basemaps (read-only).

    Module-scoped for speed: a new pool per module, so connections that another module's
    fixture terminated (``scratch_url``) are never handed out.
    """
    from spatial.settings import BasemapSettings

    settings = Settings(db=DatabaseSettings(url=db_url), basemap=BasemapSettings(dir=basemap_dir))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
